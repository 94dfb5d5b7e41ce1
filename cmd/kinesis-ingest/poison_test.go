package main

import (
	"crypto/md5"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/golang/protobuf/proto"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/efoproxy"
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

// Through enhanced fan-out, malformed KPL aggregates are caught as they are
// through GetRecords: on a one-shard stream, 20 good aggregates of 100
// records, 50 plain records and 3 malformed aggregates (a bad protobuf, a
// truncated one, and one whose 51st record has a partition-key index out of
// range, which panicked the library's de-aggregator) arrive in the same
// SubscribeToShard events. Every good record must be a row, each malformed
// aggregate a decode_error dead letter with its shard, sequence number and
// original bytes, and the worker must stay up.
func TestPoisonAggregatesThroughEnhancedFanOut(t *testing.T) {
	t.Parallel()
	skipIfExternal(t, "it puts the initial-response proxy in front of the emulator it starts")
	e := newEnv(t, 1)
	p := efoproxy.New(t, e.kin.Endpoint)
	rec := func(id int) string {
		return fmt.Sprintf(`{"id":%d,"amount":1.5,"ts":"2026-11-01T12:00:00Z","note":null}`, id)
	}
	aggregate := func(first int, badAt int) []byte {
		var data []string
		idx := make([]uint64, 100)
		for j := range 100 {
			data = append(data, rec(first+j))
			idx[j] = uint64(j % 2)
		}
		if badAt >= 0 {
			idx[badAt] = 7
		}
		return kplAggregate(t, []string{"a", "b"}, idx, data...)
	}
	good := aggregate(9100, -1)
	malformed := map[string][]byte{
		"bad-proto": kplFrame([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}),
		"truncated": kplFrame(good[4 : len(good)-16-40]),
		"bad-index": aggregate(9000, 50),
	}
	badAfter := map[int]string{3: "bad-index", 9: "bad-proto", 15: "truncated"}

	// Put in order, each malformed aggregate alone to learn its sequence
	// number, so that the events mix them with good records.
	const rows = 20*100 + 50
	seqOf := map[string]string{}
	plain := 2000
	var data [][]byte
	var keys []string
	for k := range 20 {
		data = append(data, aggregate(k*100, -1))
		keys = append(keys, fmt.Sprintf("agg-%d", k))
		for n := 0; n < 3 && plain < rows; n++ {
			data, keys = append(data, []byte(rec(plain))), append(keys, fmt.Sprintf("k-%d", plain))
			plain++
		}
		if key, ok := badAfter[k]; ok {
			e.put(data, keys)
			data, keys = nil, nil
			for _, seq := range e.put([][]byte{malformed[key]}, []string{key}) {
				seqOf[key] = seq
			}
		}
	}
	e.put(data, keys)

	w := e.startEFO(e.efoConfig("trim_horizon", "orders-efo"), "w1", p)
	counts := func() string {
		lost := missing(idsOf(e.rows()), 0, rows, nil)
		return fmt.Sprintf("%d of %d good records have a row, %d of 3 dead letters", rows-len(lost), rows, len(e.letters()))
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		select {
		case <-w.exited:
			b, _ := os.ReadFile(w.log)
			t.Fatalf("worker died reading malformed aggregates through enhanced fan-out: %s\n%s", counts(), tail(string(b), 30))
		default:
		}
		if len(missing(idsOf(e.rows()), 0, rows, nil)) == 0 && len(e.letters()) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s through enhanced fan-out: %s", counts())
		}
	}
	if lost, dups := report(t, e.rows(), rows); len(lost) > 0 || dups > 0 {
		t.Errorf("%d good records lost, %d read twice; want 0 and 0", len(lost), dups)
	}
	for id := range idsOf(e.rows()) {
		if id >= 9000 {
			t.Errorf("row %d comes from a malformed aggregate; it must be a dead letter whole", id)
		}
	}
	letters := e.letters()
	if len(letters) != 3 {
		t.Fatalf("%d dead letters, want 3 (the malformed aggregates): %+v", len(letters), letters)
	}
	for _, l := range letters {
		want, ok := malformed[l.PartitionKey]
		switch {
		case !ok:
			t.Errorf("dead letter for partition key %q, which is no malformed aggregate", l.PartitionKey)
		case l.Reason != "decode_error" || !strings.Contains(l.Error, "KPL"):
			t.Errorf("dead letter for %s: reason %q error %q, want decode_error about the KPL aggregate", l.PartitionKey, l.Reason, l.Error)
		case string(l.Data) != string(want):
			t.Errorf("dead letter for %s: its data is not the aggregate's original bytes", l.PartitionKey)
		case l.ShardID != "shardId-000000000000" || l.SequenceNumber != seqOf[l.PartitionKey]:
			t.Errorf("dead letter for %s: shard %q sequence %q, want shardId-000000000000 and %s", l.PartitionKey, l.ShardID, l.SequenceNumber, seqOf[l.PartitionKey])
		}
	}
	if got := p.Calls("GetRecords"); got != 0 {
		t.Errorf("GetRecords calls = %d, want 0: the records must come through enhanced fan-out", got)
	}
	w.stop(60 * time.Second)
}
