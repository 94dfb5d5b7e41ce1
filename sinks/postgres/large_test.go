package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestTenMiBValues writes a row whose note is a 10 MiB string, next to small
// rows and over batch_bytes on its own, and a dead letter of a 10 MiB record,
// and reads both back whole, and the letter's start and size through the
// Reader: Kinesis records may be 10 MiB.
func TestTenMiBValues(t *testing.T) {
	const tenMiB = 10 << 20
	dsn := server(t).CreateDatabase(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	s := newRowSink(t, Config{DSN: dsn, Table: "orders", CreateTable: true})
	note := strings.Repeat("n", tenMiB)
	rows := orderRows("shardId-0", 1, 3)
	rows[1].Fields[3].Value = note
	if err := s.Write(ctx, rows); err != nil {
		t.Fatalf("write a row of 10 MiB: %v", err)
	}
	var got string
	if err := conn.QueryRow(ctx, "SELECT note FROM orders WHERE id = 2").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != note {
		t.Fatalf("the note read back has %d bytes, want %d", len(got), len(note))
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := NewDeadLetterSink(wctx, Config{DSN: dsn, Table: "dead_letters", CreateTable: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	data := []byte(strings.Repeat("\xff", tenMiB))
	letter := record.DeadLetter{Origin: record.Origin{Source: "orders", ShardID: "shardId-0", SequenceNumber: "49590000000000000000000000000000000000000000000000000001", ArrivalTime: t0},
		Reason: record.ReasonDecode, Error: "invalid JSON at byte 0: invalid UTF-8", Data: data}
	if err := d.Write(ctx, []record.DeadLetter{letter}); err != nil {
		t.Fatalf("write a dead letter of 10 MiB: %v", err)
	}
	back := readLetters(t, conn, "dead_letters")
	if len(back) != 1 || string(back[0].Data) != string(data) {
		t.Fatalf("read back %d dead letters, want 1 with its 10 MiB of data", len(back))
	}

	// The errors view reads only the start of it, and its size.
	var heads []*Letter
	if _, err := (Reader{DSN: dsn, Table: "dead_letters"}).DeadLetters(ctx, LetterQuery{Newest: 20}, 259, func(l *Letter) error {
		heads = append(heads, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(heads) != 1 || heads[0].Size != tenMiB || string(heads[0].Data) != string(data[:259]) {
		t.Fatalf("read %d dead letters through the reader, want 1 of size %d with its first 259 bytes", len(heads), tenMiB)
	}
}
