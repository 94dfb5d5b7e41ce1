package app

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

	dec, err := decoderFor(src(config.Format{Kind: config.FormatJSON}), slog.New(slog.DiscardHandler))
	if _, ok := dec.(*jsondec.Decoder); !ok || err != nil {
		t.Fatalf("json: %T, %v", dec, err)
	}

	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc})), slog.New(slog.DiscardHandler))
	if _, ok := dec.(*avrodec.Decoder); !ok || err != nil {
		t.Fatalf("schema_file: %T, %v", dec, err)
	}
	if v, err := dec.Decode([]byte{84}); err != nil || v.(map[string]any)["id"] != int64(42) {
		t.Fatalf("decode: %v, %v", v, err)
	}

	// framing: single_object refuses raw binary; binary takes it.
	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc, Framing: config.AvroFramingSingleObject})), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode([]byte{84}); err == nil {
		t.Fatalf("framing single_object decoded a raw binary record")
	}
	dec, err = decoderFor(src(avro(config.Avro{SchemaFile: avsc, Framing: config.AvroFramingBinary})), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dec.Decode([]byte{84}); err != nil || v.(map[string]any)["id"] != int64(42) {
		t.Fatalf("framing binary: %v, %v", v, err)
	}

	// No registry on this address: the decoder is built without contacting
	// it, and a record needing it is transient, not a dead letter.
	dec, err = decoderFor(src(avro(config.Avro{Registry: &config.Registry{URL: "http://127.0.0.1:1", Username: "u", Password: "p"}})), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode([]byte{0, 0, 0, 0, 1, 84}); !errors.Is(err, decoders.ErrTransient) {
		t.Fatalf("registry down: %v, want ErrTransient", err)
	}

	_, err = decoderFor(src(avro(config.Avro{SchemaFile: bad})), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `source "orders": format: avrodec: schema file`) {
		t.Fatalf("bad schema: %v", err)
	}
	_, err = decoderFor(src(config.Format{Kind: "xml"}), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `format "xml" is not supported`) {
		t.Fatalf("xml: %v", err)
	}
}
