package peek_test

import (
	"crypto/md5"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/golang/protobuf/proto"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/peek"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

func aggregate(t *testing.T, data ...string) []byte {
	t.Helper()
	a := &records.AggregatedRecord{PartitionKeyTable: []string{"sub"}}
	for _, d := range data {
		a.Records = append(a.Records, &records.Record{PartitionKeyIndex: proto.Uint64(0), Data: []byte(d)})
	}
	msg, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return frame(msg)
}

func frame(msg []byte) []byte {
	sum := md5.Sum(msg)
	return append(append([]byte("\xf3\x89\x9a\xc2"), msg...), sum[:]...)
}

// TestRead reads a two-shard stream on kinesis-mock: every record of a shard
// in order when PerShard exceeds them, the first PerShard otherwise (an
// aggregate's sub-records kept whole), none from a time after the last put;
// aggregates come out de-aggregated and a malformed one as an invalid record.
func TestRead(t *testing.T) {
	t.Parallel()
	kc := testaws.Kinesis(envtest.Kinesis(t).Endpoint)
	arn := envtest.CreateStream(t, kc, "peek", 2)
	put := func(key string, data []byte) string {
		out, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("peek"), PartitionKey: aws.String(key), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ShardId)
	}
	// One partition key per shard: find two that hash apart.
	keys := map[string]string{}
	var firstShard string
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprint("key-", i)
		shard := put(k, []byte(fmt.Sprintf(`{"n":0,"key":%q}`, k)))
		if _, seen := keys[shard]; !seen {
			keys[shard] = k
			if firstShard == "" {
				firstShard = shard
			}
		}
		if i > 64 {
			t.Fatal("64 partition keys all went to one shard")
		}
	}
	k := keys[firstShard]
	for i := 1; i <= 4; i++ {
		put(k, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	put(k, aggregate(t, "a", "b", "c"))
	put(k, frame([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}))

	arrivals := map[string]time.Time{} // by what read returns of a record
	read := func(perShard int, from time.Time) map[string][]string {
		t.Helper()
		shards, err := peek.Read(t.Context(), peek.Config{Client: kc, Source: "src", StreamARN: arn, StreamName: "peek", PerShard: perShard, From: from, Gap: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(shards) != 2 {
			t.Fatalf("%d shards read, want 2", len(shards))
		}
		out := map[string][]string{}
		for _, sh := range shards {
			for _, r := range sh.Records {
				if r.Origin.Source != "src" || r.Origin.StreamARN != arn || r.Origin.ShardID != sh.ID || r.Origin.SequenceNumber == "" || r.Origin.ArrivalTime.IsZero() {
					t.Errorf("record of shard %s has origin %+v", sh.ID, r.Origin)
				}
				s := string(r.Data)
				if r.Invalid != nil {
					s = "invalid: " + r.Invalid.Error()
				} else if r.Origin.PartitionKey == "sub" {
					s = fmt.Sprintf("sub %d %s", r.Origin.SubSequence, r.Data)
				}
				out[sh.ID] = append(out[sh.ID], s)
				arrivals[s] = r.Origin.ArrivalTime
			}
		}
		return out
	}

	all := read(100, time.Time{})
	got := all[firstShard]
	if len(got) < 9 || !strings.HasPrefix(got[0], `{"n":0`) || got[1] != `{"n":1}` || got[4] != `{"n":4}` ||
		got[5] != "sub 0 a" || got[6] != "sub 1 b" || got[7] != "sub 2 c" || !strings.HasPrefix(got[8], "invalid: malformed KPL aggregate") {
		t.Errorf("shard %s from trim_horizon: %q", firstShard, got)
	}
	for shard, recs := range all {
		if shard != firstShard && len(recs) == 0 {
			t.Errorf("shard %s: nothing read, want its first record", shard)
		}
	}

	// Six records stop inside the aggregate: its sub-records stay whole.
	if got := read(6, time.Time{})[firstShard]; len(got) != 8 || got[7] != "sub 2 c" {
		t.Errorf("shard %s, 6 per shard: %q, want 5 records and the aggregate's 3 sub-records", firstShard, got)
	}
	if got := read(2, time.Time{})[firstShard]; len(got) != 2 || got[1] != `{"n":1}` {
		t.Errorf("shard %s, 2 per shard: %q", firstShard, got)
	}
	// From the arrival of {"n":3}: the records that arrived at or after it.
	from := arrivals[`{"n":3}`]
	if from.IsZero() {
		t.Fatal(`no arrival time read for {"n":3}`)
	}
	var want []string
	for _, s := range all[firstShard] {
		if !arrivals[s].Before(from) {
			want = append(want, s)
		}
	}
	if got := read(100, from)[firstShard]; !slices.Equal(got, want) || len(want) < 6 || len(want) == len(all[firstShard]) {
		t.Errorf("shard %s from %s: %q, want %q", firstShard, from, got, want)
	}
}

func TestReadRefusesAnEmptyConfig(t *testing.T) {
	for _, c := range []peek.Config{{}, {Client: &kinesis.Client{}, StreamName: "s"}} {
		if _, err := peek.Read(t.Context(), c); err == nil {
			t.Errorf("Read(%+v): no error", c)
		}
	}
}

var _ peek.API = (*kinesis.Client)(nil)
