package s3_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	s3sink "github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/sinktest"
)

// readLetters reads every dead letter under prefix back whole, through the
// sink's own reader.
func readLetters(t testing.TB, c s3sink.ReadAPI, bucket, prefix string) []record.DeadLetter {
	t.Helper()
	var out []record.DeadLetter
	st, err := s3sink.LetterReader{Client: c, Bucket: bucket, Prefix: prefix}.DeadLetters(t.Context(), "", -1, func(l *s3sink.Letter) error {
		out = append(out, l.DeadLetter)
		return nil
	})
	if err != nil {
		t.Fatalf("read the dead letters: %v", err)
	}
	if st.SkippedLines > 0 || st.SkippedObjects > 0 {
		t.Fatalf("the dead letters' objects hold %d lines and %d objects that are not dead letters", st.SkippedLines, st.SkippedObjects)
	}
	return out
}

// The conformance suite, objects gzip-compressed.
func TestDeadLetterConformance(t *testing.T) {
	s := server(t)
	c := s.Client()
	b := &testBuckets{s: s}
	open := func(t *testing.T, bucket string) sinks.DeadLetterSink {
		ds, err := s3sink.NewDeadLetterSink(s3sink.LetterConfig{Client: c, Bucket: bucket, Prefix: "errors/dl", Compression: "gzip"}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	sinktest.RunDeadLetterSink(t, sinktest.DeadLetterHarness{
		New:     func(t *testing.T) sinks.DeadLetterSink { return open(t, b.create(t)) },
		Reopen:  func(t *testing.T) sinks.DeadLetterSink { return open(t, b.get(t)) },
		Read:    func(t *testing.T) []record.DeadLetter { return readLetters(t, c, b.get(t), "errors/dl") },
		Dedupes: true,
		Break:   func(t *testing.T) { s.Stop(t) },
		Heal:    func(t *testing.T) { s.Start(t) },
	})
}

// letterKey identifies a dead letter: a record may make one per dataset.
type letterKey struct {
	source, shard, seq string
	sub                int
	dataset            string
	reason             record.Reason
}

func keyOf(d record.DeadLetter) letterKey {
	return letterKey{d.Source, d.ShardID, d.SequenceNumber, d.SubSequence, d.Dataset, d.Reason}
}

// batchLetters are the dead letters of records from..to-1 of a shard as the
// pipeline hands them over: every third record fails to decode; every
// fifth is refused by two datasets' schemas (two letters); every seventh
// is refused by the row sink, and those letters come last, after the
// batch's others, as the pipeline appends them once the rows are written.
func batchLetters(source, shard string, from, to int) []record.DeadLetter {
	var out, refused []record.DeadLetter
	for i := from; i < to; i++ {
		o := record.Origin{Source: source, ShardID: shard, SequenceNumber: seq(i), PartitionKey: fmt.Sprintf("k-%d", i), ArrivalTime: t0.Add(time.Duration(i) * time.Second)}
		data := []byte(fmt.Sprintf(`{"id":%d`, i))
		switch {
		case i%3 == 0:
			out = append(out, record.DeadLetter{Origin: o, Reason: record.ReasonDecode, Error: "unexpected end of JSON input", Data: data})
		case i%5 == 0:
			out = append(out,
				record.DeadLetter{Origin: o, Dataset: "orders", Reason: record.ReasonSchema, Error: "amount: missing", Data: data},
				record.DeadLetter{Origin: o, Dataset: "audit", Reason: record.ReasonSchema, Error: "user: missing", Data: data})
		case i%7 == 0:
			refused = append(refused, record.DeadLetter{Origin: o, Dataset: "orders", Reason: record.ReasonSinkRejected, Error: "sink lake: value out of range", Data: data})
		}
	}
	return append(out, refused...)
}

// writeLetters writes the letters of records from..to-1, batch records a
// Write.
func writeLetters(t *testing.T, ds sinks.DeadLetterSink, source, shard string, from, to, batch int) {
	t.Helper()
	for i := from; i < to; i += batch {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ds.Write(ctx, batchLetters(source, shard, i, min(i+batch, to)))
		cancel()
		if err != nil {
			t.Fatalf("Write of records %d..: %v", i, err)
		}
	}
}

// lettersOnce fails the test unless the letters stored under prefix are
// want, each once.
func lettersOnce(t *testing.T, c s3sink.ReadAPI, bucket, prefix string, want ...[]record.DeadLetter) {
	t.Helper()
	wanted := map[letterKey]bool{}
	for _, w := range want {
		for _, d := range w {
			wanted[keyOf(d)] = true
		}
	}
	got := map[letterKey]int{}
	for _, d := range readLetters(t, c, bucket, prefix) {
		got[keyOf(d)]++
	}
	bad := 0
	for k := range wanted {
		if got[k] != 1 {
			if bad++; bad <= 10 {
				t.Errorf("dead letter %+v stored %d times, want once", k, got[k])
			}
		}
	}
	for k, n := range got {
		if !wanted[k] {
			if bad++; bad <= 10 {
				t.Errorf("dead letter %+v stored %d times, never written", k, n)
			}
		}
	}
}

func newLetters(t *testing.T, api s3sink.API, bucket string, mod ...func(*s3sink.LetterConfig)) *s3sink.DeadLetterSink {
	t.Helper()
	cfg := s3sink.LetterConfig{Client: api, Bucket: bucket, Prefix: "dl", Compression: "zstd"}
	for _, m := range mod {
		m(&cfg)
	}
	ds, err := s3sink.NewDeadLetterSink(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ds.Close() })
	return ds
}

// A replay from an older checkpoint (reset, kill -9, lease move) with
// batches cut elsewhere: the letters of records a chain holds are dropped,
// a record's letters (two datasets, a sink's refusal appended after later
// records' letters) included, and the records past them are stored once.
// Objects hold at most one record here (MaxBytes 1): a record's letters
// must still stay together.
func TestDeadLetterReplay(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	const shard = "shardId-000000000001"
	puts := &countPuts{API: s.Client()}
	small := func(c *s3sink.LetterConfig) { c.MaxBytes = 1 }
	writeLetters(t, newLetters(t, puts, bucket, small), "orders", shard, 0, 150, 20)
	lettersOnce(t, s.Client(), bucket, "dl", batchLetters("orders", shard, 0, 150))
	records := 0
	for i := range 150 {
		if len(batchLetters("orders", shard, i, i+1)) > 0 {
			records++
		}
	}
	if got := puts.puts.Load(); got != int64(records) {
		t.Errorf("%d objects for %d records with letters at MaxBytes 1, want one per record", got, records)
	}

	dups := 0
	replay := newLetters(t, s.Client(), bucket, small, func(c *s3sink.LetterConfig) { c.OnDuplicates = func(n int) { dups += n } })
	writeLetters(t, replay, "orders", shard, 0, 200, 13)
	lettersOnce(t, s.Client(), bucket, "dl", batchLetters("orders", shard, 0, 200))
	if want := len(batchLetters("orders", shard, 0, 150)); dups != want {
		t.Errorf("the replay dropped %d letters as stored, want %d", dups, want)
	}
}

// A zombie that keeps writing after its lease moved and the new owner,
// one after the other and at once: both meet at keys (412), learn the
// chain's head and store every letter once. Another source's shard of the
// same id is another chain.
func TestDeadLetterZombieAndNewOwner(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	const shard = "shardId-000000000003"
	var conflicts atomic.Int64
	onConflict := func(c *s3sink.LetterConfig) { c.OnConflict = func() { conflicts.Add(1) } }
	zombie := newLetters(t, s.Client(), bucket, onConflict)
	owner := newLetters(t, s.Client(), bucket, onConflict)

	writeLetters(t, zombie, "orders", shard, 0, 50, 50)
	writeLetters(t, owner, "orders", shard, 20, 100, 40) // from an older checkpoint, past the zombie
	writeLetters(t, zombie, "orders", shard, 50, 80, 30) // stale: all stored by the owner
	lettersOnce(t, s.Client(), bucket, "dl", batchLetters("orders", shard, 0, 100))
	if conflicts.Load() == 0 {
		t.Error("no conflict was resolved: the writers did not meet at a key")
	}
	writeLetters(t, owner, "clicks", shard, 0, 100, 30)

	var wg sync.WaitGroup
	for i, ds := range []*s3sink.DeadLetterSink{zombie, owner} {
		wg.Go(func() { writeLetters(t, ds, "orders", shard, 100, 300, 11+20*i) })
	}
	wg.Wait()
	lettersOnce(t, s.Client(), bucket, "dl", batchLetters("orders", shard, 0, 300), batchLetters("clicks", shard, 0, 100))
}

// The reader: a shard's letters only (not those of a shard whose id starts
// with its), objects of every compression (a config changed between runs),
// and what is no letter counted, not returned.
func TestLetterReader(t *testing.T) {
	s := server(t)
	bucket := s.CreateBucket(t)
	for i, comp := range []string{"none", "gzip", "zstd"} {
		ds := newLetters(t, s.Client(), bucket, func(c *s3sink.LetterConfig) { c.Compression = comp })
		writeLetters(t, ds, "orders", "shardId-1", 100*i, 100*i+100, 25)
		writeLetters(t, ds, "orders", "shardId-10", 100*i, 100*i+100, 25)
	}
	for _, key := range []string{"dl/_kinesis-ingest-probe-0123", "dl/orders/notes.txt", "dl/orders/shardId-1-" + strings.Repeat("0", 128) + "-0000000000.csv"} {
		if _, err := s.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x\n")}); err != nil {
			t.Fatal(err)
		}
	}
	r := s3sink.LetterReader{Client: s.Client(), Bucket: bucket, Prefix: "dl"}
	for _, tt := range []struct {
		shard            string
		objects, skipped int
	}{
		{shard: "shardId-1", objects: 12, skipped: 1}, // the .csv
		{shard: "", objects: 24, skipped: 3},
	} {
		var got []record.DeadLetter
		st, err := r.DeadLetters(t.Context(), tt.shard, 8, func(l *s3sink.Letter) error {
			if len(l.Data) > 8 || l.Size < len(l.Data) {
				t.Errorf("head of %d bytes of %d, want at most 8", len(l.Data), l.Size)
			}
			got = append(got, l.DeadLetter)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := len(batchLetters("orders", "x", 0, 300))
		if tt.shard == "" {
			want *= 2
		}
		if len(got) != want || st.Objects != tt.objects || st.SkippedObjects != tt.skipped {
			t.Errorf("shard %q: %d letters from %d objects, %d skipped; want %d, %d, %d", tt.shard, len(got), st.Objects, st.SkippedObjects, want, tt.objects, tt.skipped)
		}
		for _, d := range got {
			if tt.shard != "" && d.ShardID != tt.shard {
				t.Errorf("shard %q: a letter of %s", tt.shard, d.ShardID)
				break
			}
		}
	}
}
