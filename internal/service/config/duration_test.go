package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseFennelDuration(t *testing.T) {
	for _, tc := range []struct {
		in          string
		want        time.Duration
		errContains string
	}{
		{in: "14d", want: 14 * 24 * time.Hour},
		{in: "1h 30m", want: 90 * time.Minute},
		{in: "1w 2m", want: 7*24*time.Hour + 2*time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "1y", want: 365 * 24 * time.Hour},
		{in: "10s", want: 10 * time.Second},
		{in: "14", errContains: "write numbers with a unit"},
		{in: "", errContains: "write numbers with a unit"},
		{in: "3x", errContains: `unknown unit "x"`},
		{in: "h", errContains: `unit "h" without a number`},
		{in: "2 d", errContains: "2 has no unit"},
		{in: "1..2h", errContains: `"1..2" is not a number`},
		{in: "300y", errContains: "too long"},
	} {
		got, err := ParseFennelDuration(tc.in)
		if tc.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("ParseFennelDuration(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.errContains)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFennelDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestCDCDataset(t *testing.T) {
	cfg, err := Parse([]byte(`
sources: [{name: src, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/a"}}]
datasets:
  - name: users
    source: src
    cdc: debezium
    disorder: 1h
    sample: 0.5
    fields:
      - {name: tenant, type: str, key: true}
      - {name: id, type: int, key: true}
      - {name: name, type: str}
      - {name: ts, type: datetime, ref: $ts_ms}
    sink: f
  - name: log
    source: src
    fields: [{name: ts, type: datetime}]
    sink: g
sinks: [{name: f, file: {path: out/f}}, {name: g, file: {path: out/g}}]
dead_letter: {file: {path: out/e}}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Datasets[0]
	if d.CDC != CDCDebezium || !d.Keyed() || d.Disorder != time.Hour {
		t.Errorf("cdc %q keyed %v disorder %v, want debezium, true, 1h", d.CDC, d.Keyed(), d.Disorder)
	}
	if k := d.Schema.Keys(); len(k) != 2 || k[0] != 0 || k[1] != 1 {
		t.Errorf("keys %v, want [0 1]", k)
	}
	// Fennel samples a keyed dataset by its keys.
	if u := d.Sample.Using; len(u) != 2 || u[0] != "tenant" || u[1] != "id" {
		t.Errorf("sample.using defaulted to %v, want the keys [tenant id]", u)
	}
	if l := cfg.Datasets[1]; l.CDC != CDCAppend || l.Keyed() || l.Disorder != 0 {
		t.Errorf("default dataset: cdc %q disorder %v, want append, 0", l.CDC, l.Disorder)
	}
}
