package kcl

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// TestReadsRetryInPlaceWhileKinesisFails makes every read fail, past the
// SDK's own attempts, with a server error, then lets them through: the read
// under way must return the records rather than fail (which would end the
// shard's consumer and release its lease). An error Kinesis means
// (ResourceNotFound) fails at once, and a read retrying
// when the worker stops ends with the stop.
func TestReadsRetryInPlaceWhileKinesisFails(t *testing.T) {
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	envtest.CreateStream(t, direct, "retry", 1)
	if _, err := direct.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("retry"), PartitionKey: aws.String("k"), Data: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	shards, err := direct.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("retry")})
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.New(t, kin.Endpoint)
	stop := make(chan struct{})
	kc := kinesis.New(testaws.Kinesis(proxy.URL).Options(), newReadRetry(stop, slog.New(slog.NewTextHandler(io.Discard, nil)), nil).middleware)
	it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("retry"), ShardId: shards.Shards[0].ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}

	proxy.SetRules(faultproxy.Rule{Operation: "GetRecords", Every: 1, Code: "InternalFailure"})
	type answer struct {
		out *kinesis.GetRecordsOutput
		err error
	}
	done := make(chan answer, 1)
	go func() {
		out, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		done <- answer{out, err}
	}()
	waitForCond(t, 20*time.Second, "more failed reads than the SDK's 3 attempts", func() bool { return proxy.Throttled()["GetRecords"] > 4 })
	proxy.SetRules()
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatalf("the read failed though Kinesis came back within %v: %v", readRetryFor, a.err)
		}
		if len(a.out.Records) != 1 || string(a.out.Records[0].Data) != "one" {
			t.Fatalf("the read returned %d records, want the one put", len(a.out.Records))
		}
	case <-time.After(readRetryFor):
		t.Fatal("the read did not return after Kinesis came back")
	}

	proxy.SetRules(faultproxy.Rule{Operation: "GetRecords", Every: 1, Code: "ResourceNotFoundException"})
	calls := proxy.Calls("GetRecords")
	_, err = kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if n := proxy.Calls("GetRecords") - calls; err == nil || n != 1 {
		t.Fatalf("a read Kinesis refused on purpose: err %v after %d calls; want it to fail at once", err, n)
	}

	proxy.SetRules(faultproxy.Rule{Operation: "GetRecords", Every: 1, Code: "InternalFailure"})
	go func() {
		_, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		done <- answer{nil, err}
	}()
	before := proxy.Throttled()["GetRecords"]
	waitForCond(t, 20*time.Second, "the read retrying", func() bool { return proxy.Throttled()["GetRecords"] > before+1 })
	close(stop)
	select {
	case a := <-done:
		if a.err == nil {
			t.Fatalf("a read retrying when the worker stops returned %v, want an error", a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read retrying did not end when the worker stopped")
	}
}

func waitForCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The errors a read can end with, sorted into worth another attempt or not.
func TestTransientRead(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no answer", &smithyhttp.RequestSendError{Err: errors.New("connection refused")}, true},
		{"a proxy's 502 without a code", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: &smithy.GenericAPIError{Code: "UnknownError"}}, true},
		{"InternalFailure", &smithy.GenericAPIError{Code: "InternalFailure"}, true},
		{"server fault", &smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, true},
		{"throttled: the KCL's", &types.ProvisionedThroughputExceededException{}, false},
		{"expired iterator: renewed, not retried", &types.ExpiredIteratorException{}, false},
		{"no such stream", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: &types.ResourceNotFoundException{}}, false},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := transientRead(tc.err); got != tc.want {
				t.Errorf("transientRead(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// The KCL renews a shard's lease only once its GetShardIterator answered:
// while that call is retried in place, the retries renew it, and a lease
// that cannot be renewed (lost) ends them.
func TestShardIteratorRetriesRenewTheLease(t *testing.T) {
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	envtest.CreateStream(t, direct, "renew", 1)
	shards, err := direct.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("renew")})
	if err != nil {
		t.Fatal(err)
	}
	shard := shards.Shards[0].ShardId
	proxy := faultproxy.New(t, kin.Endpoint, faultproxy.Rule{Operation: "GetShardIterator", Every: 1, Code: "InternalFailure"})
	var renewals atomic.Int64
	var lost atomic.Bool
	renew := func(s string) error {
		if s != aws.ToString(shard) {
			t.Errorf("renewed %q, want %q", s, aws.ToString(shard))
		}
		renewals.Add(1)
		if lost.Load() {
			return errors.New("lease lost")
		}
		return nil
	}
	kc := kinesis.New(testaws.Kinesis(proxy.URL).Options(), newReadRetry(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), renew).middleware)
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String("renew"), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeTrimHorizon}

	done := make(chan error, 1)
	go func() { _, err := kc.GetShardIterator(t.Context(), in); done <- err }()
	waitForCond(t, 20*time.Second, "two renewals while GetShardIterator is retried", func() bool { return renewals.Load() >= 2 })
	proxy.SetRules()
	if err := <-done; err != nil {
		t.Fatalf("GetShardIterator failed though Kinesis came back: %v", err)
	}

	proxy.SetRules(faultproxy.Rule{Operation: "GetShardIterator", Every: 1, Code: "InternalFailure"})
	lost.Store(true)
	before := renewals.Load()
	if _, err := kc.GetShardIterator(t.Context(), in); err == nil {
		t.Fatal("GetShardIterator succeeded with every call failing")
	}
	if n := renewals.Load() - before; n != 1 {
		t.Errorf("%d renewals after the lease was lost, want 1 (then no more retries)", n)
	}
}
