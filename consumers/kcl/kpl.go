package kcl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
)

// The KCL de-aggregates KPL records after GetRecords, and one malformed
// aggregate (valid magic and MD5, bad protobuf) makes it drop the whole batch;
// a bad partition-key index panics the process. The library takes only a
// *kinesis.Client, so the guard sits on that client: a middleware, run once
// the response is decoded, that tries each aggregate alone and, when it would
// fail, turns it into a plain record the de-aggregator does not recognise
// (its first byte inverted, so the KPL magic no longer matches) and flags it
// in the record's EncryptionType, which Kinesis alone sets (NONE or KMS) and
// the KCL passes on untouched. The processor (takeInvalid) restores the
// original bytes of a flagged record and hands them on as an invalid record,
// a decode_error dead letter. The flag travels with the record, never in its
// data: a plain record cannot forge it, whatever it starts with.
//
// Enhanced fan-out reaches the same de-aggregator with the records of each
// SubscribeToShard event, and there a protobuf error dropped the whole event
// (the resume position moved past it) and a bad index panicked every worker
// that took the shard. The SDK decodes events in a goroutine it starts while
// deserializing, onto a stream whose reader cannot be swapped afterwards
// without a race, so the guard goes under it: a Deserialize middleware wraps
// the response body and applies the same check to each event's records
// before the SDK reads them (guardedEvents).

var kplMagic = []byte("\xf3\x89\x9a\xc2")

// malformedFlag starts the EncryptionType of a record the guard flagged;
// the reason follows it.
const malformedFlag = "kinesis-ingest/malformed-kpl-aggregate:"

// GuardAggregates is a kinesis.Options function installing the guard.
func GuardAggregates(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		// The Initialize step is outermost: its handler returns after the
		// response is fully deserialized, retries included.
		err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kinesis-ingest-guard-kpl",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					return out, md, err
				}
				if res, ok := out.Result.(*kinesis.GetRecordsOutput); ok {
					for i := range res.Records {
						guardRecord(&res.Records[i])
					}
				}
				return out, md, err
			}), middleware.Before)
		if err != nil || stack.ID() != "SubscribeToShard" {
			return err
		}
		// Inside the SDK's deserializers, next to the transport: the body
		// is wrapped before anything reads it.
		return stack.Deserialize.Insert(middleware.DeserializeMiddlewareFunc("kinesis-ingest-guard-kpl-events",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.StatusCode == http.StatusOK {
					resp.Body = &guardedEvents{up: resp.Body}
				}
				return out, md, err
			}), "OperationDeserializer", middleware.After)
	})
}

// guardedEvents relays a SubscribeToShard event stream message by message,
// each SubscribeToShardEvent with its malformed aggregates flagged as
// guardRecord flags them; every other message passes byte for byte.
type guardedEvents struct {
	up  io.ReadCloser
	buf []byte // the rest of the message being relayed
	err error  // the upstream's end, once reached
}

func (s *guardedEvents) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		var m []byte
		m, s.err = readMessage(s.up)
		s.buf = guardEvent(m)
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *guardedEvents) Close() error { return s.up.Close() }

// aggregateInJSON is how a record whose data starts with the KPL magic
// begins in an event's JSON: its base64, after the opening quote.
var aggregateInJSON = []byte(`"` + base64.StdEncoding.EncodeToString(kplMagic[:3]))

// guardEvent returns the event-stream message m with the malformed
// aggregates among its records flagged, or m itself when it holds none or
// cannot be read (the SDK then reports what is wrong with it).
func guardEvent(m []byte) []byte {
	if !bytes.Contains(m, aggregateInJSON) {
		return m
	}
	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(m), nil)
	if err != nil || header(msg, ":message-type") != "event" || header(msg, ":event-type") != "SubscribeToShardEvent" {
		return m
	}
	// Every field but the flagged records' Data and EncryptionType is
	// carried over as it came.
	var event map[string]json.RawMessage
	var recs []map[string]json.RawMessage
	if json.Unmarshal(msg.Payload, &event) != nil || json.Unmarshal(event["Records"], &recs) != nil {
		return m
	}
	flagged := false
	for _, rec := range recs {
		var r types.Record
		if json.Unmarshal(rec["Data"], &r.Data) != nil {
			continue
		}
		if guardRecord(&r); r.EncryptionType == "" {
			continue
		}
		data, _ := json.Marshal(r.Data)
		flag, _ := json.Marshal(r.EncryptionType)
		rec["Data"], rec["EncryptionType"] = data, flag
		flagged = true
	}
	if !flagged {
		return m
	}
	var err1, err2 error
	event["Records"], err1 = json.Marshal(recs)
	msg.Payload, err2 = json.Marshal(event)
	var out bytes.Buffer
	if err1 != nil || err2 != nil || eventstream.NewEncoder().Encode(&out, msg) != nil {
		return m
	}
	return out.Bytes()
}

func guardRecord(r *types.Record) {
	if !bytes.HasPrefix(r.Data, kplMagic) {
		return
	}
	if err := tryDeaggregate(*r); err != nil {
		r.Data = invertFirst(r.Data)
		r.EncryptionType = types.EncryptionType(malformedFlag + err.Error())
	}
}

// invertFirst returns a copy of b with its first byte inverted; applied
// twice it gives b back.
func invertFirst(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] = ^c[0]
	return c
}

func tryDeaggregate(r types.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed KPL aggregate: de-aggregation panicked: %v", p)
		}
	}()
	if _, err := deagg.DeaggregateRecords([]types.Record{r}); err != nil {
		return fmt.Errorf("malformed KPL aggregate: %w", err)
	}
	return nil
}

// takeInvalid returns the original bytes and the reason of a record the
// guard flagged; ok=false for every other record, whatever its bytes.
func takeInvalid(r types.Record) (orig []byte, reason string, ok bool) {
	reason, ok = strings.CutPrefix(string(r.EncryptionType), malformedFlag)
	if !ok || len(r.Data) == 0 {
		return nil, "", false
	}
	return invertFirst(r.Data), reason, true
}
