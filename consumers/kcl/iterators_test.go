package kcl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/faultproxy"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// TestExpiredIteratorsAreRenewedInPlace reads a shard as the KCL does (each
// read with the iterator the previous one returned) through a proxy that
// answers reads with ExpiredIteratorException, as Kinesis does to a read
// that waited over 5 minutes: every record must come once, in order, with
// no read failing, whether the expired iterator began the chain (its first
// read expires: renewed where it started) or followed records (renewed
// after the last one). A
// chain begun at LATEST with nothing read is left to fail: renewed, it
// would skip what arrived meanwhile.
func TestExpiredIteratorsAreRenewedInPlace(t *testing.T) {
	kin := envtest.Kinesis(t)
	direct := testaws.Kinesis(kin.Endpoint)
	envtest.CreateStream(t, direct, "expiry", 1)
	const n = 40
	var entries []types.PutRecordsRequestEntry
	for i := range n {
		entries = append(entries, types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "%d", i), PartitionKey: aws.String("k")})
	}
	if _, err := direct.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("expiry"), Records: entries}); err != nil {
		t.Fatal(err)
	}
	shards, err := direct.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("expiry")})
	if err != nil {
		t.Fatal(err)
	}
	shard := shards.Shards[0].ShardId

	tests := []struct {
		name  string
		every int // every how many reads expire
		start types.ShardIteratorType
	}{
		{name: "every second read, from TRIM_HORIZON", every: 2, start: types.ShardIteratorTypeTrimHorizon},
		{name: "every third read, from TRIM_HORIZON", every: 3, start: types.ShardIteratorTypeTrimHorizon},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy := faultproxy.New(t, kin.Endpoint, faultproxy.Rule{Operation: "GetRecords", Every: tc.every, Code: "ExpiredIteratorException"})
			var renewed atomic.Int64
			kc := renewingClient(t, direct, proxy.URL, &renewed)
			it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("expiry"), ShardId: shard, ShardIteratorType: tc.start})
			if err != nil {
				t.Fatal(err)
			}
			// The proxy counts reads from its start: reads outside the chain
			// first, so that the chain's very first read expires.
			for range tc.every - 1 {
				other, err := direct.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("expiry"), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeLatest})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := testaws.Kinesis(proxy.URL).GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: other.ShardIterator}); err != nil {
					t.Fatal(err)
				}
			}
			iter := it.ShardIterator
			var got []string
			for reads := 0; len(got) < n; reads++ {
				if reads > 4*n {
					t.Fatalf("%d reads and %d of %d records", reads, len(got), n)
				}
				out, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(3)})
				if err != nil {
					t.Fatalf("read %d failed (%d records so far): %v", reads, len(got), err)
				}
				for _, rec := range out.Records {
					got = append(got, string(rec.Data))
				}
				iter = out.NextShardIterator
			}
			for i, g := range got {
				if g != fmt.Sprint(i) {
					t.Fatalf("record %d is %q: the renewed iterators skipped or repeated records: %q", i, g, got)
				}
			}
			if renewed.Load() == 0 || renewed.Load() != int64(proxy.Throttled()["GetRecords"]) {
				t.Errorf("%d renewals for %d expired reads", renewed.Load(), proxy.Throttled()["GetRecords"])
			}
		})
	}

	t.Run("LATEST with nothing read is not renewed", func(t *testing.T) {
		proxy := faultproxy.New(t, kin.Endpoint, faultproxy.Rule{Operation: "GetRecords", Every: 1, Code: "ExpiredIteratorException"})
		var renewed atomic.Int64
		kc := renewingClient(t, direct, proxy.URL, &renewed)
		it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("expiry"), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		var expired *types.ExpiredIteratorException
		if !errors.As(err, &expired) || renewed.Load() != 0 {
			t.Fatalf("GetRecords on an expired LATEST iterator = %v after %d renewals, want ExpiredIteratorException and none", err, renewed.Load())
		}
	})
}

// renewingClient reads through url as the worker's read client does: the
// iterator renewal inside the read-rate gate, which names each read's
// shard. renewed counts the renewals, GetShardIterator calls of the plain
// client.
func renewingClient(t *testing.T, plain *kinesis.Client, url string, renewed *atomic.Int64) *kinesis.Client {
	t.Helper()
	counted := kinesis.New(plain.Options(), func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count-renewals",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if _, ok := in.Parameters.(*kinesis.GetShardIteratorInput); ok {
						renewed.Add(1)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
	limiter, err := NewReadLimiter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gate := newReadGate(limiter, "expiry", nil, log)
	return kinesis.New(testaws.Kinesis(url).Options(), newIteratorRenewal(counted, log).middleware, gate.middleware)
}
