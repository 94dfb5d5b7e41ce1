package config

import "testing"

// TestCompression: a source's compression and bound as loaded (the bad
// values are in testdata/compression.bad.yaml).
func TestCompression(t *testing.T) {
	for _, c := range []struct {
		name    string
		kinesis string
		want    string
		max     int64
	}{
		{"default none", ``, CompressionNone, 0},
		{"none", `, compression: none`, CompressionNone, 0},
		{"gzip with the default bound", `, compression: gzip`, CompressionGzip, DefaultMaxDecompressedBytes},
		{"zstd", `, compression: zstd, max_decompressed_bytes: 1024`, CompressionZstd, 1024},
		{"auto", `, compression: auto, max_decompressed_bytes: 1073741824`, CompressionAuto, 1 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"` + c.kinesis + `}}
datasets:
  - {name: orders, source: orders, sink: files, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: files, file: {path: out/rows}}
dead_letter:
  file: {path: out/errors}
`))
			if err != nil {
				t.Fatal(err)
			}
			if k := cfg.Sources[0].Kinesis; k.Compression != c.want || k.MaxDecompressedBytes != c.max {
				t.Errorf("compression %q, max_decompressed_bytes %d; want %q, %d", k.Compression, k.MaxDecompressedBytes, c.want, c.max)
			}
		})
	}
	cfg, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []Kinesis{{Compression: CompressionAuto, MaxDecompressedBytes: DefaultMaxDecompressedBytes}, {Compression: CompressionZstd, MaxDecompressedBytes: 1 << 20}, {Compression: CompressionNone}} {
		if k := cfg.Sources[i].Kinesis; k.Compression != want.Compression || k.MaxDecompressedBytes != want.MaxDecompressedBytes {
			t.Errorf("full.good.yaml source %d: compression %q, bound %d; want %q, %d", i, k.Compression, k.MaxDecompressedBytes, want.Compression, want.MaxDecompressedBytes)
		}
	}
}
