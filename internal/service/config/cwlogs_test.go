package config

import (
	"strings"
	"testing"
)

// TestCloudWatchLogsFormat: format cloudwatch_logs as loaded and printed
// (the bad values are in testdata/cloudwatch_logs.bad.yaml).
func TestCloudWatchLogsFormat(t *testing.T) {
	for _, c := range []struct {
		name    string
		kinesis string
		message string
		max     int64
		printed string
	}{
		{"scalar: str, the default bound", `, format: cloudwatch_logs`, CloudWatchLogsStr, DefaultMaxDecompressedBytes, "cloudwatch_logs:\n          message: str"},
		{"null: the defaults", `, format: {cloudwatch_logs: null}`, CloudWatchLogsStr, DefaultMaxDecompressedBytes, "message: str"},
		{"json, a bound", `, format: {cloudwatch_logs: {message: json}}, max_decompressed_bytes: 4096`, CloudWatchLogsJSON, 4096, "message: json"},
		{"compression none", `, format: {cloudwatch_logs: {message: str}}, compression: none`, CloudWatchLogsStr, DefaultMaxDecompressedBytes, "message: str"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`
sources:
  - {name: logs, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/logs"` + c.kinesis + `}}
datasets:
  - name: logs
    source: logs
    fields:
      - {name: ts, type: datetime, ref: $event_timestamp}
      - {name: group, type: str, ref: $log_group}
      - {name: message, type: str, ref: $data}
    sink: files
sinks:
  - {name: files, file: {path: out/rows}}
dead_letter:
  file: {path: out/errors}
`))
			if err != nil {
				t.Fatal(err)
			}
			k := cfg.Sources[0].Kinesis
			if k.Format.Kind != FormatCloudWatchLogs || k.Format.CloudWatchLogs == nil || k.Format.CloudWatchLogs.Message != c.message ||
				k.MaxDecompressedBytes != c.max || k.Compression != CompressionNone {
				t.Errorf("format %+v (%+v), bound %d, compression %q; want cloudwatch_logs message %s, bound %d, none", k.Format, k.Format.CloudWatchLogs, k.MaxDecompressedBytes, k.Compression, c.message, c.max)
			}
			b, err := Print(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), c.printed) {
				t.Errorf("config print:\n%s\nwant it to hold %q", b, c.printed)
			}
			again, err := Parse(b)
			if err != nil || again.Sources[0].Kinesis.Format.CloudWatchLogs.Message != c.message || again.Sources[0].Kinesis.MaxDecompressedBytes != c.max {
				t.Errorf("the printed config loads as %+v, %v", again.Sources[0].Kinesis, err)
			}
		})
	}
}
