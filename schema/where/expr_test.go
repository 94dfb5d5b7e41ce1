package where_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/schema/where"
)

func TestComputedFields(t *testing.T) {
	specs := []schema.FieldSpec{
		{Name: "amount", Type: "float"},
		{Name: "qty", Type: "int"},
		{Name: "total", Type: "float", Expr: "amount * qty"},
		{Name: "size", Type: "str", Expr: `amount >= 100 ? "big" : "small"`},
		{Name: "ts", Type: "datetime"},
		{Name: "day", Type: "date", Expr: `date(ts.Format("2006-01-02"))`},
		{Name: "ratio", Type: "float", Expr: "100 / (amount - 150)"},
		{Name: "label", Type: "optional[str]", Expr: `qty > 1 ? nil : "single"`},
		{Name: "fee", Type: "float", Expr: "tax + 0.5"},
		// An input: read for the expressions, not a column of the row.
		{Name: "tax", Type: "float", Ref: "billing.tax", Input: true},
	}
	s, err := schema.CompileWith("ts", specs, where.CompileExpr)
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{}
	for _, c := range s.Columns() {
		cols = append(cols, c.Name)
	}
	if got := strings.Join(cols, ","); got != "amount,qty,total,size,ts,day,ratio,label,fee" {
		t.Fatalf("columns %s: computed fields must keep their declared place", got)
	}
	dec := jsondec.New()
	for _, tc := range []struct {
		name, rec string
		want      map[string]any
		err       string
	}{
		{name: "small", rec: `{"amount":2.5,"qty":4,"ts":"2026-11-01T23:30:00Z","billing":{"tax":1}}`, want: map[string]any{
			"fee": 1.5, "total": 10.0, "size": "small", "day": record.Date{Year: 2026, Month: time.November, Day: 1}, "ratio": 100 / (2.5 - 150), "label": nil}},
		{name: "big", rec: `{"amount":200,"qty":1,"ts":"2026-11-02T00:00:00Z","billing":{"tax":2}}`, want: map[string]any{
			"total": 200.0, "size": "big", "day": record.Date{Year: 2026, Month: time.November, Day: 2}, "ratio": 2.0, "label": "single"}},
		// 100/0 is +Inf, which no float field holds: the record's dead letter.
		{name: "not finite", rec: `{"amount":150,"qty":1,"ts":"2026-11-02T00:00:00Z","billing":{"tax":2}}`, err: "ratio: expr: want float, got"},
	} {
		v, err := dec.Decode([]byte(tc.rec))
		if err != nil {
			t.Fatal(err)
		}
		row, err := s.Convert(v)
		fast, ok := s.ConvertJSON([]byte(tc.rec))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			if ok {
				t.Errorf("%s: ConvertJSON took a record Convert refuses", tc.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := map[string]any{}
		for _, f := range row {
			got[f.Name] = f.Value
		}
		if _, in := got["tax"]; in || len(row) != len(s.Columns()) {
			t.Errorf("%s: row %v carries the input or does not match the columns", tc.name, row)
		}
		for k, w := range tc.want {
			if g := got[k]; !equal(g, w) {
				t.Errorf("%s: %s = %#v, want %#v", tc.name, k, g, w)
			}
		}
		if !ok || !equal(fast, row) {
			t.Errorf("%s: ConvertJSON gave %v (%v), Convert %v", tc.name, fast, ok, row)
		}
	}
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
