package outcome_test

import (
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/outcome"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

func letter(seq string, reason record.Reason, errMsg, data string) record.DeadLetter {
	return record.DeadLetter{Origin: record.Origin{Source: "orders", ShardID: "shardId-0", SequenceNumber: seq}, Reason: reason, Error: errMsg, Data: []byte(data)}
}

func TestWriteText(t *testing.T) {
	tests := []struct {
		name    string
		fill    func(r *outcome.Report)
		columns outcome.Columns
		want    string
	}{
		{
			name: "kinds by count, the first of each its example",
			fill: func(r *outcome.Report) {
				d := r.Of("orders", "orders")
				d.Rows = 7
				d.AddLetters([]record.DeadLetter{
					letter("1", record.ReasonSchema, `id: want int, got string "1"`, `{"id":"1"}`),
					letter("2", record.ReasonSchema, "amount: missing", `{"id":2}`),
				})
				d.AddLetters([]record.DeadLetter{letter("3", record.ReasonSchema, `amount: want float, got string "x"`, `{"amount":"x"}`)})
				r.Of("orders", "").AddLetters([]record.DeadLetter{letter("4", record.ReasonDecode, "invalid JSON", "\x1b[31mred")})
			},
			columns: outcome.Columns{Filtered: true, Unrouted: true},
			want: `dataset orders (source orders): rows 7, dead letters 3, filtered 0, unrouted 0
  schema_error amount: 2
    e.g. shardId-0 2/0: amount: missing
    data (8 bytes, text): {"id":2}
  schema_error id: 1
    e.g. shardId-0 1/0: id: want int, got string "1"
    data (10 bytes, text): {"id":"1"}
source orders, no dataset: dead letters 1, unrouted 0
  decode_error: 1
    e.g. shardId-0 4/0: invalid JSON
    data (8 bytes, hex): 1b5b33316d726564
`,
		},
		{
			name: "a redrive's columns",
			fill: func(r *outcome.Report) {
				d := r.Of("b", "x")
				d.Records, d.Rows, d.Duplicates, d.Unrouted = 5, 4, 4, 1
				r.Of("a", "y").Records = 1
			},
			columns: outcome.Columns{Records: true, Duplicates: true},
			want: `dataset y (source a): records 1, rows 0, dead letters 0, duplicates 0
dataset x (source b): records 5, rows 4, dead letters 0, duplicates 4
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r outcome.Report
			tt.fill(&r)
			var b strings.Builder
			if err := outcome.WriteText(&b, r.Datasets(), tt.columns); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestTotals(t *testing.T) {
	var r outcome.Report
	r.Of("s", "a").Rows = 2
	r.Of("s", "b").Rows = 3
	r.Of("s", "").AddLetters([]record.DeadLetter{letter("1", record.ReasonDecode, "x", "y")})
	if got := r.Totals(); got.Rows != 5 || got.Letters != 1 {
		t.Errorf("totals %+v, want 5 rows and 1 letter", got)
	}
}
