package main

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// producer puts one record into every shard each round, ids counting up from
// 0, and remembers which ids Kinesis acknowledged: those must all come out.
type producer struct {
	kc     *kinesis.Client
	stream string
	keys   []string // one explicit hash key per shard: its range's start

	mu       sync.Mutex
	next     int64
	acked    map[int64]bool
	failed   int // entries not acknowledged after every retry
	lastErr  error
	putCalls int
}

func newProducer(ctx context.Context, kc *kinesis.Client, stream string) (*producer, error) {
	p := &producer{kc: kc, stream: stream, acked: map[int64]bool{}}
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := kc.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the shards of %q: %w", stream, err)
		}
		for _, s := range out.Shards {
			lo, ok := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
			if !ok {
				return nil, fmt.Errorf("shard %s: bad starting hash key %q", aws.ToString(s.ShardId), aws.ToString(s.HashKeyRange.StartingHashKey))
			}
			p.keys = append(p.keys, lo.String())
		}
		if out.NextToken == nil {
			return p, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// run puts a round every interval until halt is closed (a round under way
// finishes, so that no call is cut off mid-way) or ctx ends. A round that
// takes longer than interval (kinesis-mock saturated) delays the next: the
// rate achieved is in the table.
func (p *producer) run(ctx context.Context, halt <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-halt:
			return
		case <-t.C:
		}
	}
}

func (p *producer) round(ctx context.Context) {
	p.mu.Lock()
	first := p.next
	p.next += int64(len(p.keys))
	p.mu.Unlock()
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	type entry struct {
		id int64
		e  types.PutRecordsRequestEntry
	}
	pending := make([]entry, len(p.keys))
	for i, k := range p.keys {
		id := first + int64(i)
		pending[i] = entry{id, types.PutRecordsRequestEntry{
			Data:            []byte(`{"id":` + strconv.FormatInt(id, 10) + `,"ts":"` + ts + `"}`),
			PartitionKey:    aws.String("k"),
			ExplicitHashKey: aws.String(k),
		}}
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; len(pending) > 0 && attempt < 10; attempt++ {
		var retry []entry
		for start := 0; start < len(pending); start += 500 {
			batch := pending[start:min(start+500, len(pending))]
			recs := make([]types.PutRecordsRequestEntry, len(batch))
			for i, b := range batch {
				recs[i] = b.e
			}
			// A call that fails outright may still have put some records:
			// they come out as rows of ids not acknowledged (counted apart).
			out, err := p.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: recs})
			p.mu.Lock()
			p.putCalls++
			if err != nil {
				p.lastErr = err
				p.mu.Unlock()
				retry = append(retry, batch...)
				continue
			}
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, batch[i])
					p.lastErr = fmt.Errorf("%s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
					continue
				}
				p.acked[batch[i].id] = true
			}
			p.mu.Unlock()
		}
		pending = retry
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				attempt = 10
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		}
	}
	p.mu.Lock()
	p.failed += len(pending)
	p.mu.Unlock()
}

// ackedCount is how many records Kinesis has acknowledged so far.
func (p *producer) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}
