package config

import (
	"reflect"
	"testing"
)

// dead_letter.s3 takes its own defaults: JSON Lines, uncompressed, under
// dead-letters/, so that a bucket shared with a lake keeps them apart.
func TestS3DeadLetterDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: lake, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: lake, s3: {bucket: my-lake, prefix: lake}}
dead_letter:
  s3: {bucket: my-lake}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.DeadLetter.S3
	if cfg.DeadLetter.Kind() != "s3" || got == nil {
		t.Fatalf("dead_letter is a %q sink, want s3", cfg.DeadLetter.Kind())
	}
	want := S3Sink{Bucket: "my-lake", Prefix: "dead-letters", Format: S3FormatJSONL, Compression: "none"}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("dead_letter.s3 = %+v, want %+v", *got, want)
	}
}
