package efoproxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/efoproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// setup returns a client through the proxy, the stream's only shard and a
// registered, ACTIVE consumer holding n records.
func setup(t *testing.T, n int) (*efoproxy.Proxy, *kinesis.Client, string, string) {
	t.Helper()
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	arn := envtest.CreateStream(t, direct, "efo", 1)
	var data [][]byte
	for i := range n {
		data = append(data, fmt.Appendf(nil, `{"i":%d}`, i))
	}
	envtest.PutJSON(t, direct, "efo", data, nil)
	p := efoproxy.New(t, kin.Endpoint)
	kc := testaws.Kinesis(p.URL)
	reg, err := kc.RegisterStreamConsumer(t.Context(), &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("c1")})
	if err != nil {
		t.Fatal(err)
	}
	carn := aws.ToString(reg.Consumer.ConsumerARN)
	waitActive(t, kc, carn)
	shards, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("efo")})
	if err != nil {
		t.Fatal(err)
	}
	return p, kc, carn, aws.ToString(shards.Shards[0].ShardId)
}

// read subscribes from pos and collects records until want arrived or the
// stream ends; it reports the records and whether the stream ended.
func read(t *testing.T, kc *kinesis.Client, carn, shard string, pos types.StartingPosition, want int) (recs []types.Record, cont string, ended bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &carn, ShardId: &shard, StartingPosition: &pos})
	if err != nil {
		return nil, "", false, err
	}
	s := out.GetStream()
	defer s.Close()
	for len(recs) < want {
		ev, ok := <-s.Events()
		if !ok {
			return recs, cont, true, s.Err()
		}
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		if e.Value.MillisBehindLatest == nil {
			t.Error("event without MillisBehindLatest")
		}
		recs = append(recs, e.Value.Records...)
		cont = aws.ToString(e.Value.ContinuationSequenceNumber)
	}
	return recs, cont, false, nil
}

// The SDK reads records from the emulator's subscription through the proxy,
// which it refuses without it.
func TestSubscribeThroughProxy(t *testing.T) {
	t.Parallel()
	p, kc, carn, shard := setup(t, 50)
	recs, cont, ended, err := read(t, kc, carn, shard, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, 50)
	if err != nil || ended {
		t.Fatalf("read: ended %v, err %v", ended, err)
	}
	if len(recs) != 50 || string(recs[0].Data) != `{"i":0}` || string(recs[49].Data) != `{"i":49}` {
		t.Fatalf("got %d records", len(recs))
	}
	if cont == "" {
		t.Error("no continuation sequence number")
	}
	if got := p.Calls("SubscribeToShard"); got != 1 {
		t.Errorf("SubscribeToShard calls = %d, want 1", got)
	}
	if got := p.Calls("GetRecords"); got != 0 {
		t.Errorf("GetRecords calls = %d, want 0", got)
	}
}

// An early end is a clean end of the stream; an injected
// ResourceInUseException is the SDK's typed error.
func TestEndEarlyAndInjectedError(t *testing.T) {
	t.Parallel()
	p, kc, carn, shard := setup(t, 5)
	p.EndAfterEvents(1)
	_, _, ended, err := read(t, kc, carn, shard, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, 1000)
	if !ended || err != nil {
		t.Fatalf("ended %v, err %v; want a clean end", ended, err)
	}
	if served, early := p.Streams(); served != 1 || early != 1 {
		t.Errorf("streams served %d, ended early %d; want 1, 1", served, early)
	}
	p.FailNextSubscribe("ResourceInUseException")
	_, _, _, err = read(t, kc, carn, shard, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, 1)
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("err = %v, want ResourceInUseException", err)
	}
}

// Why the proxy exists: straight from the emulator, the SDK refuses the
// subscription. If this starts to pass, kinesis-mock sends initial-response
// itself and the proxy can go.
func TestEmulatorAloneIsRefused(t *testing.T) {
	t.Parallel()
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	arn := envtest.CreateStream(t, direct, "efo", 1)
	envtest.PutJSON(t, direct, "efo", [][]byte{[]byte(`{}`)}, nil)
	reg, err := direct.RegisterStreamConsumer(t.Context(), &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("c1")})
	if err != nil {
		t.Fatal(err)
	}
	carn := aws.ToString(reg.Consumer.ConsumerARN)
	waitActive(t, direct, carn)
	shards, err := direct.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("efo")})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = read(t, direct, carn, aws.ToString(shards.Shards[0].ShardId), types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, 1)
	if err == nil || !strings.Contains(err.Error(), "initial-response") {
		t.Fatalf("err = %v, want the SDK's initial-response refusal", err)
	}
}

func waitActive(t *testing.T, kc *kinesis.Client, carn string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		d, err := kc.DescribeStreamConsumer(t.Context(), &kinesis.DescribeStreamConsumerInput{ConsumerARN: &carn})
		if err != nil {
			t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer still %s", d.ConsumerDescription.ConsumerStatus)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
