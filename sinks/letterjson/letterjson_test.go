package letterjson

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// TestDecodeLine: cutting the data off a line gives what decoding the
// whole line gives, for the lines Append writes and for lines it did not.
func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name, line string
		size       int
		head       string
		err        bool
	}{
		{name: "as the sink writes it", line: `{"source":"s","reason":"decode_error","error":"e","data":"aGVsbG8="}`, size: 5, head: "hello"},
		{name: "empty data", line: `{"source":"s","reason":"decode_error","error":"e","data":""}`, size: 0, head: ""},
		{name: "data key quoted in the error", line: `{"reason":"decode_error","error":"x\",\"data\":\"QQ==","data":"aGk="}`, size: 2, head: "hi"},
		{name: "data first", line: `{"data":"aGk=","reason":"decode_error","error":"e"}`, size: 2, head: "hi"},
		{name: "nested data key", line: `{"x":{"data":"QQ=="},"reason":"decode_error","error":"e","data":"aGk="}`, size: 2, head: "hi"},
		{name: "escaped base64", line: `{"reason":"decode_error","error":"e","data":"aGk\u003d"}`, size: 2, head: "hi"},
		{name: "not base64", line: `{"reason":"decode_error","error":"e","data":"a*k="}`, err: true},
		{name: "bad padding", line: `{"reason":"decode_error","error":"e","data":"a=k="}`, err: true},
		{name: "not JSON before the data", line: `{"reason":"decode_error","error":,"data":"aGk="}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := Decoder{Head: 64}
			var l Letter
			err := dec.Decode([]byte(tt.line), &l)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if l.Size != tt.size || string(l.Data) != tt.head || l.Reason != record.ReasonDecode {
				t.Errorf("got size %d head %q reason %q, want %d %q decode_error", l.Size, l.Data, l.Reason, tt.size, tt.head)
			}
		})
	}
}

// What Append writes, Decode reads back whole (Head < 0) or cut to a head
// with the size of all of it; a row's line is not a letter.
func TestAppendDecode(t *testing.T) {
	d := record.DeadLetter{
		Origin: record.Origin{Source: "orders", StreamARN: "arn:aws:kinesis:us-east-1:000000000000:stream/s", ShardID: "shardId-000000000001",
			SequenceNumber: "49590338271490256608559692538361571095921575989136588802", SubSequence: 3, PartitionKey: "k-1",
			ArrivalTime: time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC)},
		Dataset: "orders", Reason: record.ReasonSchema, Error: "amount: want float, got \"x\"\n", Data: []byte("\xff\x00{\"id\":1}"),
	}
	line, err := Append(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	line = line[:len(line)-1]
	for _, head := range []int{-1, 4} {
		dec := Decoder{Head: head}
		var l Letter
		if err := dec.Decode(line, &l); err != nil {
			t.Fatal(err)
		}
		want := d.Data
		if head >= 0 {
			want = want[:head]
		}
		if l.Origin != d.Origin || l.Dataset != d.Dataset || l.Reason != d.Reason || l.Error != d.Error || !bytes.Equal(l.Data, want) || l.Size != len(d.Data) {
			t.Errorf("head %d: got %+v, want %+v with data %q", head, l, d, want)
		}
	}
	var l Letter
	if err := (&Decoder{}).Decode([]byte(`{"id":1,"_shard_id":"s"}`), &l); !errors.Is(err, ErrNotALetter) {
		t.Errorf("a row's line: %v, want ErrNotALetter", err)
	}
}
