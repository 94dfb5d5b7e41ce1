package main

import (
	"crypto/md5"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/golang/protobuf/proto"
)

func kplAggregate(t *testing.T, keys []string, idx []uint64, data ...string) []byte {
	t.Helper()
	a := &records.AggregatedRecord{PartitionKeyTable: keys}
	for i, d := range data {
		a.Records = append(a.Records, &records.Record{PartitionKeyIndex: proto.Uint64(idx[i]), Data: []byte(d)})
	}
	msg, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return kplFrame(msg)
}

func kplFrame(msg []byte) []byte {
	sum := md5.Sum(msg)
	out := append([]byte("\xf3\x89\x9a\xc2"), msg...)
	return append(out, sum[:]...)
}

// TestPoisonDataNeverBlocksAShard puts, on a one-shard stream so that they
// share GetRecords batches with good records: a valid KPL aggregate, a
// malformed one (bad protobuf), one that panics the library's de-aggregator
// (bad partition-key index) and a record of almost 1 MB. Every good record and
// sub-record must be a row, each bad aggregate a decode_error dead letter with
// its original bytes, and the shard must get past all of them.
func TestPoisonDataNeverBlocksAShard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	rec := func(id int, note string) string {
		return fmt.Sprintf(`{"id":%d,"amount":1.5,"ts":"2026-11-01T12:00:00Z","note":%q}`, id, note)
	}
	good := kplAggregate(t, []string{"a", "b"}, []uint64{0, 1, 0}, rec(100, ""), rec(101, ""), rec(102, ""))
	badProto := kplFrame([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
	badIndex := kplAggregate(t, []string{"a"}, []uint64{9}, rec(200, ""))
	big := rec(300, strings.Repeat("x", 1000*1000-100))
	data := [][]byte{[]byte(rec(1, "")), good, []byte(rec(2, "")), badProto, []byte(rec(3, "")), badIndex, []byte(big), []byte(rec(4, ""))}
	keys := []string{"k1", "agg", "k2", "bad-proto", "k3", "bad-index", "big", "k4"}
	e.put(data, keys)

	e.start(e.config("trim_horizon"), "w1")
	waitFor(t, 60*time.Second, "rows for ids 1-4, the aggregate's 3 sub-records and the big record", func() bool {
		return len(e.rows()) >= 8 && len(e.letters()) >= 2
	})
	ids := idsOf(e.rows())
	for _, id := range []int64{1, 2, 3, 4, 100, 101, 102, 300} {
		if ids[id] != 1 {
			t.Errorf("id %d: %d rows, want 1", id, ids[id])
		}
	}
	subseq := map[int64]bool{}
	for _, r := range e.rows() {
		if r.ID >= 100 && r.ID <= 102 {
			subseq[r.ID] = true
		}
	}
	letters := e.letters()
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2 (the bad aggregates): %+v", len(letters), letters)
	}
	for _, l := range letters {
		want := badProto
		if l.PartitionKey == "bad-index" {
			want = badIndex
		}
		if l.Reason != "decode_error" || string(l.Data) != string(want) || !strings.Contains(l.Error, "KPL") {
			t.Errorf("dead letter for %s: reason %q error %q, data intact=%v", l.PartitionKey, l.Reason, l.Error, string(l.Data) == string(want))
		}
	}
}
