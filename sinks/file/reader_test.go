package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestReaderReadsWhatTheSinksWrote: the rows and dead letters the sinks
// wrote come back through Reader, each prefix apart, the dead letters whole
// or cut to a head with their size; a line still being written is not read
// but counted, and a Tail reads each line once, the completed one included.
func TestReaderReadsWhatTheSinksWrote(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rs := newRowSink(t, dir, 0)
	if err := rs.Write(ctx, testBatch("shardId-1", 0, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}
	ds := newDeadLetterSink(t, dir)
	data := bytes.Repeat([]byte("0123456789"), 100)
	o := record.Origin{Source: "src", ShardID: "shardId-1", SequenceNumber: "1", ArrivalTime: fixedTime}
	letters := []record.DeadLetter{
		{Origin: o, Dataset: "orders", Reason: record.ReasonSchema, Error: "amount: want float", Data: data},
		{Origin: o, Reason: record.ReasonDecode, Error: "bad json", Data: []byte("{")},
	}
	if err := ds.Write(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}

	var rows [][]byte
	st, err := Reader{Dir: dir, Prefix: "orders"}.Lines(ctx, func(_ string, line []byte) error {
		rows = append(rows, bytes.Clone(line))
		return nil
	})
	if err != nil || st.Files != 1 || len(rows) != 3 {
		t.Fatalf("rows: %d lines from %+v, err %v; want 3 from 1 file", len(rows), st, err)
	}
	if r, err := parseRowLine(rows[2]); err != nil || rowInt(t, r, "seq") != 2 {
		t.Errorf("third row %q: %v", rows[2], err)
	}

	for _, head := range []int{-1, 16} {
		var got []Letter
		st, err := Reader{Dir: dir, Prefix: "dead-letters"}.DeadLetters(ctx, head, func(l *Letter) error {
			got = append(got, *l)
			return nil
		})
		if err != nil || st.Files != 1 || len(got) != 2 {
			t.Fatalf("head %d: %d letters from %+v, err %v; want 2 from 1 file", head, len(got), st, err)
		}
		want := data
		if head >= 0 {
			want = data[:head]
		}
		l := got[0]
		if l.Size != len(data) || !bytes.Equal(l.Data, want) || l.Reason != record.ReasonSchema || l.Dataset != "orders" ||
			l.Error != "amount: want float" || !l.ArrivalTime.Equal(fixedTime) || l.ShardID != "shardId-1" {
			t.Errorf("head %d: first letter %+v (data %q), want size %d, data %q", head, l.Origin, l.Data, len(data), want)
		}
	}

	// A line being written: not read, counted; read once complete.
	names, err := Reader{Dir: dir, Prefix: "orders"}.Files()
	if err != nil || len(names) != 1 {
		t.Fatalf("files: %v, %v", names, err)
	}
	tail := Tail{Reader: Reader{Dir: dir}}
	count := func() (int, ReadStats) {
		n := 0
		st, err := tail.Lines(ctx, func(string, []byte) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n, st
	}
	if n, st := count(); n != 5 || st.Files != 2 || st.Partial != 0 {
		t.Fatalf("the first tail read: %d lines, %+v; want the 5 lines of 2 files", n, st)
	}
	f, err := os.OpenFile(names[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`{"id":3,`); err != nil {
		t.Fatal(err)
	}
	if n, st := count(); n != 0 || st.Partial != 1 {
		t.Fatalf("with a partial line: %d lines, %+v; want none read and 1 partial", n, st)
	}
	if _, err := f.WriteString(`"x":1}` + "\n"); err != nil {
		t.Fatal(err)
	}
	var last []byte
	if st, err := tail.Lines(ctx, func(_ string, l []byte) error { last = bytes.Clone(l); return nil }); err != nil || st.Partial != 0 || string(last) != `{"id":3,"x":1}` {
		t.Fatalf("once complete: %q, %+v, %v; want the completed line alone", last, st, err)
	}
}

// TestReaderOfNothing: a directory not created yet holds nothing; a file in
// its place is an error.
func TestReaderOfNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	st, err := Reader{Dir: dir}.Lines(context.Background(), func(string, []byte) error {
		t.Error("read a line of nothing")
		return nil
	})
	if err != nil || st != (ReadStats{}) {
		t.Errorf("a missing directory: %+v, %v", st, err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Reader{Dir: dir}).Files(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file for a directory: %v, want an error saying it is not a directory", err)
	}
}
