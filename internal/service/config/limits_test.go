package config

import (
	"fmt"
	"testing"
	"time"
)

// TestLimits: the limits of issue 31 are off unless set, and read as set.
func TestLimits(t *testing.T) {
	const base = `
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
%s
datasets:
  - {name: orders, source: orders, sink: files, fields: [{name: ts, type: datetime}]}
sinks:
  - name: files
    file: {path: out/rows}
%s
dead_letter:
  file: {path: out/errors}
consumer:
  application: orders-ingest
%s
`
	tests := []struct {
		name               string
		source, sink, cons string
		maxAge             time.Duration
		expired            string
		retry, gap         time.Duration
		readsPerSecond     int
	}{
		{name: "off by default"},
		{name: "max_record_age dead-letters by default", source: "    max_record_age: 36h", maxAge: 36 * time.Hour, expired: ExpiredDeadLetter},
		{name: "max_record_age skipping", source: "    max_record_age: 2s\n    expired: skip", maxAge: 2 * time.Second, expired: ExpiredSkip},
		{name: "a sink's retry budget", sink: "    max_retry_duration: 90m", retry: 90 * time.Minute},
		{name: "read-rate caps", cons: "  min_read_interval: 250ms\n  max_reads_per_second: 40", gap: 250 * time.Millisecond, readsPerSecond: 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(fmt.Appendf(nil, base, tc.source, tc.sink, tc.cons))
			if err != nil {
				t.Fatal(err)
			}
			s, k, c := cfg.Sources[0], cfg.Sinks[0], cfg.Consumer
			if s.MaxRecordAge != tc.maxAge || s.Expired != tc.expired {
				t.Errorf("max_record_age %v, expired %q; want %v, %q", s.MaxRecordAge, s.Expired, tc.maxAge, tc.expired)
			}
			if k.MaxRetryDuration != tc.retry {
				t.Errorf("max_retry_duration %v, want %v", k.MaxRetryDuration, tc.retry)
			}
			if c.MinReadInterval != tc.gap || c.MaxReadsPerSecond != tc.readsPerSecond {
				t.Errorf("min_read_interval %v, max_reads_per_second %d; want %v, %d", c.MinReadInterval, c.MaxReadsPerSecond, tc.gap, tc.readsPerSecond)
			}
		})
	}
}
