package kcl

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// EFO turns enhanced fan-out on for a consumer: records are pushed over
// SubscribeToShard event streams instead of polled with GetRecords. Exactly
// one of the fields is set.
type EFO struct {
	// ConsumerName is registered on the stream by the first worker that
	// finds it missing (RegisterConsumer); it is never deregistered.
	ConsumerName string
	// ConsumerARN names a consumer registered elsewhere.
	ConsumerARN string
	// Hooks receives what the subscriptions do (metrics.FanOut).
	Hooks FanOutHooks
}

// consumerActiveTimeout bounds the wait for a registered consumer to become
// ACTIVE (AWS takes seconds; the emulator about its transition delay).
const consumerActiveTimeout = 2 * time.Minute

// RegisterConsumer returns the ARN of the stream's consumer called name,
// registering it if it does not exist, once it is ACTIVE. Workers racing to
// register it all get the same ARN: a registration that loses the race
// (ResourceInUseException) describes the winner's. It never deregisters.
func RegisterConsumer(ctx context.Context, kc *kinesis.Client, streamARN, name string, log *slog.Logger) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, consumerActiveTimeout)
	defer cancel()
	arn, status, err := describeConsumer(ctx, kc, streamARN, name)
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		out, rerr := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &streamARN, ConsumerName: &name})
		var inUse *types.ResourceInUseException
		switch {
		case rerr == nil:
			log.Info("enhanced fan-out consumer registered", "consumer_name", name, "consumer_arn", aws.ToString(out.Consumer.ConsumerARN))
			arn, status, err = aws.ToString(out.Consumer.ConsumerARN), out.Consumer.ConsumerStatus, nil
		case errors.As(rerr, &inUse):
			// Another worker registered it first.
			arn, status, err = describeConsumer(ctx, kc, streamARN, name)
		default:
			return "", fmt.Errorf("register enhanced fan-out consumer %q on stream %s: %w; grant kinesis:RegisterStreamConsumer, or register it yourself and give efo.consumer_arn", name, streamARN, rerr)
		}
	}
	if err != nil {
		return "", fmt.Errorf("describe enhanced fan-out consumer %q of stream %s: %w; grant kinesis:DescribeStreamConsumer", name, streamARN, err)
	}
	first := true
	err = activePolicy.Do(ctx, retry.Options{Retryable: func(err error) bool { return errors.Is(err, errNotActive) }},
		func(ctx context.Context) error {
			if !first {
				if arn, status, err = describeConsumer(ctx, kc, streamARN, name); err != nil {
					return fmt.Errorf("describe enhanced fan-out consumer %q of stream %s: %w", name, streamARN, err)
				}
			}
			first = false
			switch status {
			case types.ConsumerStatusActive:
				return nil
			case types.ConsumerStatusDeleting:
				return fmt.Errorf("enhanced fan-out consumer %q of stream %s is being deleted; wait for it to go, then start again (it will be registered anew)", name, streamARN)
			}
			return errNotActive
		})
	if errors.Is(err, errNotActive) {
		return "", fmt.Errorf("enhanced fan-out consumer %q of stream %s still %s: %w", name, streamARN, status, context.Cause(ctx))
	}
	if err != nil {
		return "", err
	}
	return arn, nil
}

// errNotActive is a stream consumer still CREATING: RegisterConsumer asks
// again.
var errNotActive = errors.New("enhanced fan-out consumer not active")

// activePolicy paces RegisterConsumer's wait for the consumer to become
// ACTIVE.
var activePolicy = retry.Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second}

func describeConsumer(ctx context.Context, kc *kinesis.Client, streamARN, name string) (string, types.ConsumerStatus, error) {
	out, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: &streamARN, ConsumerName: &name})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.ConsumerDescription.ConsumerARN), out.ConsumerDescription.ConsumerStatus, nil
}

// FanOutGuard wraps the HTTP client of a Kinesis client that the KCL uses in
// fan-out mode, and neutralises what its FanOutShardConsumer gets wrong
// (v1.0.0, clientlibrary/worker/fan-out-shard-consumer.go):
//
//   - It resubscribes the moment a stream ends, and AWS refuses a
//     SubscribeToShard for the same consumer and shard within 5 seconds of
//     the last successful one (ResourceInUseException), which ends the
//     shard's consumer and its lease. The guard holds such a call until the
//     gap has passed, and sends a refused one again after a pause.
//   - It reads an exception in the stream as a normal end. The guard logs it
//     and counts it (FanOutHooks.Ended with SubscriptionError).
//   - It dereferences MillisBehindLatest without a nil check, which would
//     crash the process on an event without one. The guard fills in -1
//     (unknown), which the metrics adapter ignores.
//
// Everything else passes through untouched.
type FanOutGuard struct {
	inner aws.HTTPClient
	hooks FanOutHooks
	log   *slog.Logger
	// Gap is the least time between two subscriptions to one shard.
	Gap time.Duration
	// Attempts bounds the sends of one refused SubscribeToShard.
	Attempts int

	mu   sync.Mutex
	last map[string]shardSub // shard id -> its latest subscription
}

type shardSub struct {
	opened, ended time.Time
}

// subscribeGap: "If you call SubscribeToShard again with the same
// ConsumerARN and ShardId within 5 seconds of a successful call, you'll get
// a ResourceInUseException" (Kinesis API reference).
const subscribeGap = 5 * time.Second

// NewFanOutGuard wraps inner (nil: http.DefaultClient's transport through a
// new client with no timeout, since a subscription streams for 5 minutes).
func NewFanOutGuard(inner aws.HTTPClient, h FanOutHooks, log *slog.Logger) *FanOutGuard {
	if inner == nil {
		inner = &http.Client{}
	}
	return &FanOutGuard{inner: inner, hooks: h, log: log, Gap: subscribeGap, Attempts: 6, last: map[string]shardSub{}}
}

// Do implements aws.HTTPClient.
func (g *FanOutGuard) Do(req *http.Request) (*http.Response, error) {
	if operation(req) != "SubscribeToShard" || req.Body == nil {
		return g.inner.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read SubscribeToShard request: %w", err)
	}
	var in struct{ ShardId string }
	_ = json.Unmarshal(body, &in) // an unreadable body is Kinesis's to refuse
	shard := in.ShardId
	var resp *http.Response
	attempt := 0
	err = refusedPolicy.Do(req.Context(), retry.Options{
		Retryable: func(err error) bool { return errors.Is(err, errRefused) },
		OnRetry: func(a retry.Attempt) {
			g.log.Debug("SubscribeToShard refused; retrying", "shard_id", shard, "attempt", a.N, "retry_in", a.Wait, "err", a.Err)
			g.mu.Lock()
			sub := g.last[shard]
			sub.ended = time.Now()
			g.last[shard] = sub
			g.mu.Unlock()
		},
	}, func(ctx context.Context) error {
		attempt++
		if err := g.waitGap(ctx, shard); err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		var err error
		if resp, err = g.inner.Do(req); err != nil {
			return err
		}
		var code string
		var first <-chan rawMessage
		if resp.StatusCode == http.StatusOK {
			// Kinesis (and the emulator) may also refuse inside the
			// stream: a ResourceInUseException as its first message.
			if first, code = g.firstMessage(resp.Body); code != "ResourceInUseException" || attempt >= g.Attempts {
				resp = g.opened(shard, resp, first)
				return nil
			}
		} else if code = errorCode(resp); code != "ResourceInUseException" || attempt >= g.Attempts {
			return nil
		}
		// Refused because a subscription is still open or too recent (the
		// previous owner's, after a lease move). Drain the refusal and try
		// again after a pause.
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		}
		resp.Body.Close()
		g.hooks.Retried(code)
		return fmt.Errorf("SubscribeToShard of shard %s: %s: %w", shard, code, errRefused)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// errRefused is a SubscribeToShard refused with ResourceInUseException:
// FanOutGuard.Do sends it again after a pause.
var errRefused = errors.New("subscription refused: in use")

// refusedPolicy paces the sends of a refused SubscribeToShard (each also
// waits for the gap since the shard's last subscription).
var refusedPolicy = retry.Policy{Initial: time.Second, Max: 10 * time.Second}

// waitGap holds a subscription to shard until Gap after its last one opened.
func (g *FanOutGuard) waitGap(ctx context.Context, shard string) error {
	g.mu.Lock()
	prev, ok := g.last[shard]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	d := time.Until(prev.opened.Add(g.Gap))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rawMessage is one event-stream message as read, or the read's error.
type rawMessage struct {
	b   []byte
	err error
}

// firstEventWait bounds how long a new subscription is held back to see
// whether its first message is a refusal. Kinesis sends the first event at
// once; a stream that is silent longer is handed on and read as it comes.
const firstEventWait = 2 * time.Second

// firstMessage starts reading the stream's first message and waits up to
// firstEventWait for it; code is its exception type if it is one. The
// message (or the read still under way) is returned for the stream to
// deliver first.
func (g *FanOutGuard) firstMessage(body io.Reader) (<-chan rawMessage, string) {
	ch := make(chan rawMessage, 1)
	go func() {
		b, err := readMessage(body)
		ch <- rawMessage{b, err}
	}()
	t := time.NewTimer(firstEventWait)
	defer t.Stop()
	select {
	case m := <-ch:
		code := ""
		if m.err == nil {
			if msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(m.b), nil); err == nil && header(msg, ":message-type") == "exception" {
				code = header(msg, ":exception-type")
			}
		}
		done := make(chan rawMessage, 1)
		done <- m
		return done, code
	case <-t.C:
		return ch, ""
	}
}

func (g *FanOutGuard) opened(shard string, resp *http.Response, first <-chan rawMessage) *http.Response {
	now := time.Now()
	g.mu.Lock()
	prev, ok := g.last[shard]
	g.last[shard] = shardSub{opened: now}
	g.mu.Unlock()
	var since time.Duration
	if ok && !prev.ended.IsZero() {
		since = now.Sub(prev.ended)
	}
	g.hooks.Started(since)
	resp.Body = &guardedStream{g: g, shard: shard, up: resp.Body, first: first}
	return resp
}

func (g *FanOutGuard) ended(shard, reason string) {
	g.mu.Lock()
	s := g.last[shard]
	s.ended = time.Now()
	g.last[shard] = s
	g.mu.Unlock()
	g.hooks.Ended(reason)
}

func operation(req *http.Request) string {
	t := req.Header.Get("X-Amz-Target")
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '.' {
			return t[i+1:]
		}
	}
	return t
}

// errorCode reads a JSON-protocol error's type without consuming the body
// the SDK will decode.
func errorCode(resp *http.Response) string {
	if c := resp.Header.Get("X-Amzn-ErrorType"); c != "" {
		code, _, _ := strings.Cut(c, ":")
		return code
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Type[strings.LastIndexByte(e.Type, '#')+1:]
}

// guardedStream relays a subscription's event stream message by message.
type guardedStream struct {
	g     *FanOutGuard
	shard string
	up    io.ReadCloser

	first  <-chan rawMessage // the first message, read before the stream was handed on
	buf    []byte            // the rest of the message being relayed
	err    error             // the upstream's end, once reached
	sawErr bool              // an exception message passed
	done   bool              // ended was reported
	once   sync.Once
}

func (s *guardedStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.err != nil {
			s.finish()
			return 0, s.err
		}
		s.buf, s.err = s.next()
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *guardedStream) Close() error {
	s.once.Do(func() {
		if !s.done {
			s.done = true
			reason := SubscriptionClosed
			if s.sawErr {
				// The SDK stops reading at an exception and closes.
				reason = SubscriptionError
			}
			s.g.ended(s.shard, reason)
		}
	})
	return s.up.Close()
}

func (s *guardedStream) finish() {
	s.once.Do(func() {
		s.done = true
		reason := SubscriptionExpired
		if s.sawErr || !errors.Is(s.err, io.EOF) {
			reason = SubscriptionError
		}
		s.g.ended(s.shard, reason)
	})
}

// readMessage reads one whole event-stream message.
func readMessage(r io.Reader) ([]byte, error) {
	var prelude [4]byte
	if _, err := io.ReadFull(r, prelude[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("event stream broke off mid-message: %w", err)
		}
		return nil, err
	}
	total := binary.BigEndian.Uint32(prelude[:])
	// A message is at most 16 MiB plus headers by the event-stream spec; a
	// larger length is a broken stream, not a reason to allocate.
	if total < 16 || total > 24<<20 {
		return nil, fmt.Errorf("event stream: message length %d out of range", total)
	}
	m := make([]byte, total)
	copy(m, prelude[:])
	if _, err := io.ReadFull(r, m[4:]); err != nil {
		return nil, fmt.Errorf("event stream broke off mid-message: %w", err)
	}
	return m, nil
}

// next reads one whole message and returns it, repaired if needed.
func (s *guardedStream) next() ([]byte, error) {
	var m []byte
	var err error
	if s.first != nil {
		f := <-s.first
		s.first = nil
		m, err = f.b, f.err
	} else {
		m, err = readMessage(s.up)
	}
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("shard %s: %w", s.shard, err)
		}
		return nil, err
	}
	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(m), nil)
	if err != nil {
		// Let the SDK report what is wrong with it.
		return m, nil
	}
	switch header(msg, ":message-type") {
	case "exception", "error":
		s.sawErr = true
		code := header(msg, ":exception-type")
		if code == "" {
			code = header(msg, ":error-code")
		}
		s.g.log.Warn("enhanced fan-out stream carried an exception; the consumer will resubscribe or restart the shard from its checkpoint",
			"shard_id", s.shard, "code", code)
		return m, nil
	case "event":
		if header(msg, ":event-type") == "SubscribeToShardEvent" && !continues(msg.Payload) {
			// The KCL takes any event without a continuation for the shard's
			// end and writes SHARD_END: only one naming child shards is.
			// Ended here instead, the event undelivered, the KCL resubscribes
			// after its last continuation (or releases the shard, which is
			// leased again from its checkpoint).
			s.g.log.Warn("enhanced fan-out event without ContinuationSequenceNumber on a shard with no child shards: not its end; subscribing again", "shard_id", s.shard)
			return nil, fmt.Errorf("shard %s: SubscribeToShardEvent without ContinuationSequenceNumber or ChildShards", s.shard)
		}
		if header(msg, ":event-type") != "SubscribeToShardEvent" || bytes.Contains(msg.Payload, []byte(`"MillisBehindLatest"`)) {
			return m, nil
		}
		fixed, ok := withMillisBehind(msg)
		if !ok {
			return m, nil
		}
		return fixed, nil
	}
	return m, nil
}

// continues reports whether a SubscribeToShardEvent's payload says where
// the shard goes on: a ContinuationSequenceNumber or, at its end, child
// shards. An unreadable payload is the SDK's to report.
func continues(payload []byte) bool {
	if bytes.Contains(payload, []byte(`"ContinuationSequenceNumber":"`)) {
		return true
	}
	var ev struct {
		ContinuationSequenceNumber *string
		ChildShards                []json.RawMessage
	}
	if json.Unmarshal(payload, &ev) != nil {
		return true
	}
	return aws.ToString(ev.ContinuationSequenceNumber) != "" || len(ev.ChildShards) > 0
}

func header(m eventstream.Message, name string) string {
	if v := m.Headers.Get(name); v != nil {
		if s, ok := v.Get().(string); ok {
			return s
		}
		return v.String()
	}
	return ""
}

// withMillisBehind re-encodes an event with MillisBehindLatest -1 (unknown).
func withMillisBehind(msg eventstream.Message) ([]byte, bool) {
	p := bytes.TrimSpace(msg.Payload)
	if len(p) < 2 || p[0] != '{' {
		return nil, false
	}
	var b bytes.Buffer
	b.WriteString(`{"MillisBehindLatest":` + strconv.Itoa(-1))
	if rest := bytes.TrimSpace(p[1:]); len(rest) > 0 && rest[0] != '}' {
		b.WriteByte(',')
	}
	b.Write(p[1:])
	msg.Payload = b.Bytes()
	var out bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&out, msg); err != nil {
		return nil, false
	}
	return out.Bytes(), true
}

// WithFanOutGuard is a Kinesis client option that puts a FanOutGuard in
// front of the client's HTTP client.
func WithFanOutGuard(h FanOutHooks, log *slog.Logger) func(*kinesis.Options) {
	return func(o *kinesis.Options) {
		o.HTTPClient = NewFanOutGuard(o.HTTPClient, h, log)
	}
}
