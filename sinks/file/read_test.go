package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// files returns the sink's files in dir, sorted by name (= by time).
func files(t testing.TB, dir, prefix string) []string {
	t.Helper()
	names, err := Reader{Dir: dir, Prefix: prefix}.Files()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// lines returns the lines of every file in order, failing the test on a file
// that does not end in a complete line.
func lines(t testing.TB, dir, prefix string) [][]byte {
	t.Helper()
	var out [][]byte
	st, err := Reader{Dir: dir, Prefix: prefix}.Lines(context.Background(), func(_ string, line []byte) error {
		out = append(out, bytes.Clone(line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Partial > 0 {
		t.Fatalf("%d files in %s end in a torn line", st.Partial, dir)
	}
	return out
}

// readRows parses the row files in dir back, failing the test on any line that
// is not a well-formed row.
func readRows(t testing.TB, dir, prefix string) []record.Row {
	t.Helper()
	var rows []record.Row
	for i, line := range lines(t, dir, prefix) {
		r, err := parseRowLine(line)
		if err != nil {
			t.Fatalf("garbled row line %d: %v: %q", i, err, line)
		}
		rows = append(rows, r)
	}
	return rows
}

// parseRowLine reads a row line keeping key order: objects come back as
// []record.Field, numbers as json.Number, everything else as JSON has it.
func parseRowLine(line []byte) (record.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return record.Row{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return record.Row{}, fmt.Errorf("data after the object")
	}
	fields, ok := v.([]record.Field)
	if !ok {
		return record.Row{}, fmt.Errorf("not an object")
	}
	meta := []string{"_source", "_shard_id", "_sequence_number", "_subsequence", "_arrival_time"}
	if len(fields) < len(meta) {
		return record.Row{}, fmt.Errorf("too few keys")
	}
	n := len(fields) - len(meta)
	var r record.Row
	for i, name := range meta {
		f := fields[n+i]
		if f.Name != name {
			return r, fmt.Errorf("key %d is %q, want %q", n+i, f.Name, name)
		}
		var s string
		if name == "_subsequence" {
			num, ok := f.Value.(json.Number)
			if !ok {
				return r, fmt.Errorf("%s: not a number", name)
			}
			s = string(num)
		} else if s, ok = f.Value.(string); !ok {
			return r, fmt.Errorf("%s: not a string", name)
		}
		switch name {
		case "_source":
			r.Origin.Source = s
		case "_shard_id":
			r.Origin.ShardID = s
		case "_sequence_number":
			r.Origin.SequenceNumber = s
		case "_subsequence":
			sub, err := strconv.Atoi(s)
			if err != nil {
				return r, fmt.Errorf("%s: %w", name, err)
			}
			r.Origin.SubSequence = sub
		case "_arrival_time":
			at, err := parseTime(s)
			if err != nil {
				return r, fmt.Errorf("%s: %w", name, err)
			}
			r.Origin.ArrivalTime = at
		}
	}
	r.Fields = fields[:n]
	return r, nil
}

// parseTime accepts exactly the layout the sink writes.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(jsonenc.TimeLayout, s)
	if err != nil {
		return t, err
	}
	if len(s) != len("2006-01-02T15:04:05.000000Z") || !strings.HasSuffix(s, "Z") {
		return t, fmt.Errorf("%q is not in the layout %s", s, jsonenc.TimeLayout)
	}
	return t, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		fields := []record.Field{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			name, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("object key %v", k)
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			fields = append(fields, record.Field{Name: name, Value: v})
		}
		_, err := dec.Token()
		return fields, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	case json.Delim('}'), json.Delim(']'):
		return nil, errors.New("unexpected end of object or array")
	}
	return tok, nil
}

// readDeadLetters parses the dead letter files in dir back, strictly.
func readDeadLetters(t testing.TB, dir, prefix string) []record.DeadLetter {
	t.Helper()
	var out []record.DeadLetter
	for i, line := range lines(t, dir, prefix) {
		var d struct {
			record.DeadLetter
			ArrivalTime string `json:"arrival_time"`
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("garbled dead letter line %d: %v: %q", i, err, line)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("garbled dead letter line %d: data after the object: %q", i, line)
		}
		at, err := parseTime(d.ArrivalTime)
		if err != nil {
			t.Fatalf("dead letter line %d: arrival_time: %v", i, err)
		}
		d.DeadLetter.ArrivalTime = at
		out = append(out, d.DeadLetter)
	}
	return out
}
