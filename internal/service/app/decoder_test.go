package app

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

func TestDecoderFor(t *testing.T) {
	dir := t.TempDir()
	avsc := filepath.Join(dir, "order.avsc")
	if err := os.WriteFile(avsc, []byte(`{"type":"record","name":"O","fields":[{"name":"id","type":"long"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.avsc")
	if err := os.WriteFile(bad, []byte(`{"type":"record","name":"O"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	src := func(f config.Format) config.Source {
		return config.Source{Name: "orders", Kinesis: config.Kinesis{Format: f}}
	}
	avro := func(a config.Avro) config.Format { return config.Format{Kind: config.FormatAvro, Avro: &a} }

	dec, err := decoderFor(src(config.Format{Kind: config.FormatJSON}), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if _, ok := dec.(*jsondec.Decoder); !ok || err != nil {
		t.Fatalf("json: %T, %v", dec, err)
	}

	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc})), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if _, ok := dec.(*avrodec.Decoder); !ok || err != nil {
		t.Fatalf("schema_file: %T, %v", dec, err)
	}
	if v, err := dec.Decode([]byte{84}); err != nil || v.(map[string]any)["id"] != int64(42) {
		t.Fatalf("decode: %v, %v", v, err)
	}

	// framing: single_object refuses raw binary; binary takes it.
	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc, Framing: config.AvroFramingSingleObject})), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode([]byte{84}); err == nil {
		t.Fatalf("framing single_object decoded a raw binary record")
	}
	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc, Framing: config.AvroFramingBinary})), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dec.Decode([]byte{84}); err != nil || v.(map[string]any)["id"] != int64(42) {
		t.Fatalf("framing binary: %v, %v", v, err)
	}

	// No registry on this address: the decoder is built without contacting
	// it, and a record needing it is transient, not a dead letter.
	dec, err = decoderFor(src(avro(config.Avro{Registry: &config.Registry{URL: "http://127.0.0.1:1", Username: "u", Password: "p"}})), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode([]byte{0, 0, 0, 0, 1, 84}); !errors.Is(err, decoders.ErrTransient) {
		t.Fatalf("registry down: %v, want ErrTransient", err)
	}

	_, err = decoderFor(src(avro(config.Avro{SchemaFile: bad})), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `source "orders": format: avrodec: schema file`) {
		t.Fatalf("bad schema: %v", err)
	}
	_, err = decoderFor(src(config.Format{Kind: "xml"}), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `format "xml" is not supported`) {
		t.Fatalf("xml: %v", err)
	}
}

// TestDecoderForCompression: a source with a compression gets a decoder that
// takes its compressed records within its bound, and keeps the JSON fast
// path (a jsondec.Record scan of the decompressed bytes).
func TestDecoderForCompression(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"id":42}`))
	w.Close()
	src := func(compression string, max int64) config.Source {
		return config.Source{Name: "orders", Kinesis: config.Kinesis{Format: config.Format{Kind: config.FormatJSON}, Compression: compression, MaxDecompressedBytes: max}}
	}
	for _, c := range []struct {
		name        string
		src         config.Source
		errContains string // of decoding the gzip record
	}{
		{"none", src(config.CompressionNone, 0), "invalid JSON"},
		{"gzip", src(config.CompressionGzip, config.DefaultMaxDecompressedBytes), ""},
		{"auto", src(config.CompressionAuto, config.DefaultMaxDecompressedBytes), ""},
		{"zstd", src(config.CompressionZstd, config.DefaultMaxDecompressedBytes), "zstd payload does not decompress"},
		{"gzip over its bound", src(config.CompressionGzip, 8), "more than the bound of 8 bytes (max_decompressed_bytes)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dec, err := decoderFor(c.src, config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			v, err := dec.Decode(gz.Bytes())
			if c.errContains == "" {
				if err != nil || v.(map[string]any)["id"] != json.Number("42") {
					t.Fatalf("Decode = %v, %v", v, err)
				}
				var r jsondec.Record
				if !dec.(interface {
					ScanJSON(*jsondec.Record, []byte) bool
				}).ScanJSON(&r, gz.Bytes()) || string(r.Bytes()) != `{"id":42}` {
					t.Fatalf("ScanJSON scanned %q", r.Bytes())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errContains) {
				t.Fatalf("Decode error = %v, want one containing %q", err, c.errContains)
			}
		})
	}
	_, err := decoderFor(src("lz4", 0), config.Consumer{CallTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `source "orders": compression: decompress: "lz4" is not a compression`) {
		t.Fatalf("lz4: %v", err)
	}
}
