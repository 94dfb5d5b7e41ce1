// Package peek reads a few records of every shard of a stream from a
// position, with no lease and no checkpoint: a dry run looks at what is in
// the stream with it (kinesis-ingest validate --sample) while the workers
// go on reading. It calls ListShards, GetShardIterator and GetRecords only,
// the reads a worker's credentials are granted anyway, and at most one
// GetRecords per shard every Gap, so that it takes little of a shard's 5
// reads per second from the workers.
//
// Records come out as a worker's consumer hands them on: KPL aggregates
// de-aggregated (sub-records numbered by SubSequence), a malformed
// aggregate as one record whose Invalid says why, to be a decode_error.
package peek

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// API is the part of the Kinesis client Read calls; *kinesis.Client has it.
type API interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Config says what to read.
type Config struct {
	Client API
	// Source and StreamARN go into every record's Origin; StreamName is
	// what the calls address (the stream in the credentials' account, as
	// the worker reads it).
	Source, StreamARN, StreamName string
	// PerShard is how many records to read of each shard, at most: fewer
	// when the shard has fewer from From on.
	PerShard int
	// From is the arrival time to read each shard from (AT_TIMESTAMP); the
	// zero time reads from the oldest record kept (TRIM_HORIZON).
	From time.Time
	// Gap is the least time between two reads of one shard: 200ms (5 per
	// second, a shard's limit) when 0.
	Gap time.Duration
	// Parallel is how many shards are read at once: 8 when 0.
	Parallel int
}

// Shard is what Read read of one shard, in sequence order.
type Shard struct {
	ID      string
	Records []record.Record
	// Reads is how many GetRecords calls it took.
	Reads int
}

// Read reads up to cfg.PerShard records of every shard ListShards lists
// (closed ones included, parents before their children), each from
// cfg.From until it has enough, reaches the newest record (an empty read
// with MillisBehindLatest 0) or the end of a closed shard. ctx bounds it;
// the first error ends it.
func Read(ctx context.Context, cfg Config) ([]Shard, error) {
	if cfg.Client == nil || cfg.StreamName == "" || cfg.PerShard <= 0 {
		return nil, errors.New("peek: Config needs a Client, a StreamName and a PerShard above 0")
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 200 * time.Millisecond
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	ids, err := listShards(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]Shard, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, cfg.Parallel)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			out[i], errs[i] = readShard(ctx, cfg, id)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func listShards(ctx context.Context, cfg Config) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(cfg.StreamName)}
	for {
		out, err := cfg.Client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the shards of stream %s: %w", cfg.StreamName, err)
		}
		for _, s := range out.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			return ids, nil
		}
		// A call with a token names no stream.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

func readShard(ctx context.Context, cfg Config, id string) (Shard, error) {
	sh := Shard{ID: id}
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(cfg.StreamName), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
	if !cfg.From.IsZero() {
		in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(cfg.From)
	}
	it, err := cfg.Client.GetShardIterator(ctx, in)
	if err != nil {
		return sh, fmt.Errorf("get an iterator of shard %s of stream %s: %w", id, cfg.StreamName, err)
	}
	iter := it.ShardIterator
	var last time.Time
	for iter != nil && len(sh.Records) < cfg.PerShard {
		if wait := time.Until(last.Add(cfg.Gap)); sh.Reads > 0 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return sh, ctx.Err()
			}
		}
		last = time.Now()
		out, err := cfg.Client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(min(cfg.PerShard-len(sh.Records), 10000)))})
		sh.Reads++
		if err != nil {
			return sh, fmt.Errorf("read shard %s of stream %s: %w", id, cfg.StreamName, err)
		}
		for _, r := range out.Records {
			sh.Records = append(sh.Records, expand(cfg, id, r)...)
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break // at the newest record
		}
		iter = out.NextShardIterator
	}
	if len(sh.Records) > cfg.PerShard {
		// The last aggregate's sub-records went past it: keep them whole,
		// as a shard's consumer would see them.
		end := cfg.PerShard
		for end < len(sh.Records) && sh.Records[end].Origin.SequenceNumber == sh.Records[end-1].Origin.SequenceNumber {
			end++
		}
		sh.Records = sh.Records[:end]
	}
	return sh, nil
}

// kplMagic starts a KPL aggregate.
var kplMagic = []byte("\xf3\x89\x9a\xc2")

// expand turns one Kinesis record into the records a worker hands on: the
// sub-records of an aggregate, or one invalid record when the aggregate is
// malformed (the de-aggregator returns an error or panics on it).
func expand(cfg Config, shard string, r types.Record) []record.Record {
	origin := record.Origin{
		Source:         cfg.Source,
		StreamARN:      cfg.StreamARN,
		ShardID:        shard,
		SequenceNumber: aws.ToString(r.SequenceNumber),
		PartitionKey:   aws.ToString(r.PartitionKey),
		ArrivalTime:    aws.ToTime(r.ApproximateArrivalTimestamp).UTC(),
	}
	if !bytes.HasPrefix(r.Data, kplMagic) {
		return []record.Record{{Origin: origin, Data: r.Data}}
	}
	subs, err := deaggregate(r)
	if err != nil {
		return []record.Record{{Origin: origin, Data: r.Data, Invalid: err}}
	}
	out := make([]record.Record, len(subs))
	for i, s := range subs {
		o := origin
		o.SubSequence, o.PartitionKey = i, aws.ToString(s.PartitionKey)
		out[i] = record.Record{Origin: o, Data: s.Data}
	}
	return out
}

func deaggregate(r types.Record) (subs []types.Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			subs, err = nil, fmt.Errorf("malformed KPL aggregate: de-aggregation panicked: %v", p)
		}
	}()
	subs, err = deagg.DeaggregateRecords([]types.Record{r})
	if err != nil {
		return nil, fmt.Errorf("malformed KPL aggregate: %w", err)
	}
	return subs, nil
}
