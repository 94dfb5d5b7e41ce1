package avrodec

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/motoserver"
)

// glueFrame frames an Avro record as AWS Glue Schema Registry's serializers
// do (their documented wire format): header version 3, the compression byte
// (0 none, 5 zlib), the schema version id's 16 bytes in the order its UUID
// text shows them, then the record, zlib-compressed with compression 5.
func frameGlue(t testing.TB, versionID string, compression byte, record []byte) []byte {
	t.Helper()
	id, err := hex.DecodeString(strings.ReplaceAll(versionID, "-", ""))
	if err != nil || len(id) != 16 {
		t.Fatalf("version id %q is not a UUID", versionID)
	}
	out := append([]byte{3, compression}, id...)
	if compression != 5 {
		return append(out, record...)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(record); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return append(out, buf.Bytes()...)
}

// countingGlue counts the GetSchemaVersion calls that reach Glue.
type countingGlue struct {
	GlueClient
	calls atomic.Int32
}

func (c *countingGlue) GetSchemaVersion(ctx context.Context, in *glue.GetSchemaVersionInput, optFns ...func(*glue.Options)) (*glue.GetSchemaVersionOutput, error) {
	c.calls.Add(1)
	return c.GlueClient.GetSchemaVersion(ctx, in, optFns...)
}

type glueHarness struct {
	moto   *motoserver.Server
	client *countingGlue
	dec    *Decoder
	errors atomic.Int32
	logs   *logBuffer
	ids    map[string]string // fixture name → schema version id
}

// newGlueHarness registers order_v1, order_v2 and all_types in moto (as
// versions of two schemas of registry "shop") and builds a decoder on it.
func newGlueHarness(t *testing.T, mutate func(*Glue)) *glueHarness {
	t.Helper()
	h := &glueHarness{moto: motoserver.Start(t, motoserver.Options{Seed: 7}), logs: &logBuffer{}}
	h.ids = h.register(t)
	h.client = &countingGlue{GlueClient: h.moto.Glue()}
	cfg := &Glue{Client: h.client, RegistryName: "shop", Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(cfg)
	}
	var err error
	h.dec, err = New(Config{Glue: cfg, OnRegistryError: func() { h.errors.Add(1) }, Logger: slog.New(slog.NewTextHandler(h.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *glueHarness) register(t *testing.T) map[string]string {
	schema := func(name string) string {
		return string(readFile(t, filepath.Join("testdata", "schemas", name+".avsc")))
	}
	return map[string]string{
		"order_v1":  h.moto.RegisterAvro(t, "shop", "orders", schema("order_v1")),
		"order_v2":  h.moto.RegisterAvro(t, "shop", "orders", schema("order_v2")),
		"all_types": h.moto.RegisterAvro(t, "shop", "all_types", schema("all_types")),
	}
}

func fixture(t *testing.T, name string) []byte {
	return readFile(t, filepath.Join("testdata", "avsc", name+".bin"))
}

// TestGlueFraming decodes avsc-written records in Glue's framing, plain and
// zlib-compressed, through Decode and the DecodeNamed fast path alike.
func TestGlueFraming(t *testing.T) {
	h := newGlueHarness(t, nil)
	for _, tc := range []struct {
		name        string
		compression byte
	}{{"none", 0}, {"zlib", 5}} {
		t.Run(tc.name, func(t *testing.T) {
			for name, want := range avscWant {
				id, ok := h.ids[name]
				if !ok {
					continue // all_types_nulls: same schema as all_types
				}
				data := frameGlue(t, id, tc.compression, fixture(t, name))
				got, err := h.dec.Decode(data)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				assertValue(t, got, want)
				// These fixtures have decimals, which DecodeNamed leaves to
				// Decode; when it answers, it must agree.
				if names, vals, ok := h.dec.DecodeNamed(data, nil); ok {
					assertValue(t, named(names, vals), want)
				}
			}
			// A schema the fast path reads (goavro writes this record:
			// avsc's fixtures all have decimals).
			const click = `{"type":"record","name":"Click","fields":[{"name":"id","type":"long"},{"name":"page","type":"string"},
				{"name":"ref","type":["null","string"]},{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}`
			id := h.moto.RegisterAvro(t, "shop", "clicks", click)
			codec, err := goavro.NewCodec(click)
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
			body, err := codec.BinaryFromNative(nil, map[string]any{"id": int64(42), "page": "/cart", "ref": goavro.Union("string", "ad"), "ts": ts})
			if err != nil {
				t.Fatal(err)
			}
			data := frameGlue(t, id, tc.compression, body)
			want := map[string]any{"id": int64(42), "page": "/cart", "ref": "ad", "ts": ts}
			got, err := h.dec.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			assertValue(t, got, want)
			names, vals, ok := h.dec.DecodeNamed(data, nil)
			if !ok {
				t.Fatal("DecodeNamed declined a record of a cached schema without decimals")
			}
			assertValue(t, named(names, vals), want)
		})
	}
	if h.errors.Load() != 0 {
		t.Errorf("OnRegistryError called %d times", h.errors.Load())
	}
}

func named(names []string, vals []any) map[string]any {
	m := map[string]any{}
	for i, n := range names {
		m[n] = vals[i]
	}
	return m
}

// TestGlueBadFrames: every malformed frame is a decode error saying what is
// wrong, never a transient failure (which would stall the shard).
func TestGlueBadFrames(t *testing.T) {
	h := newGlueHarness(t, func(g *Glue) { g.MaxInflatedBytes = 1 << 10 })
	id := h.ids["order_v1"]
	good := frameGlue(t, id, 0, fixture(t, "order_v1"))
	zipped := frameGlue(t, id, 5, fixture(t, "order_v1"))
	bomb := frameGlue(t, id, 5, bytes.Repeat([]byte{0}, 64<<10))
	for _, tc := range []struct {
		name        string
		data        []byte
		errContains string
	}{
		{"empty", nil, "empty payload"},
		{"confluent magic byte", append([]byte{0, 0, 0, 0, 1}, fixture(t, "order_v1")...), "wrong header version byte 0x00"},
		{"header cut short", good[:10], "payload ends inside the Glue header"},
		{"version byte only", good[:1], "payload ends inside the Glue header"},
		{"unknown compression byte", append([]byte{3, 2}, good[2:]...), "unknown compression byte 0x02"},
		{"zlib byte on a plain record", append([]byte{3, 5}, good[2:]...), "not zlib"},
		{"zlib stream cut short", zipped[:len(zipped)-6], "does not inflate"},
		{"bytes after the zlib stream", append(append([]byte{}, zipped...), 1, 2), "2 trailing bytes after the zlib stream"},
		{"zlib bomb", bomb, "inflates to more than 1024 bytes"},
		{"record cut short", good[:len(good)-3], "invalid Avro"},
		{"bytes after the record", append(append([]byte{}, good...), 0), "1 trailing bytes after the record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.dec.Decode(tc.data)
			var de *Error
			if !errors.As(err, &de) || errors.Is(err, decoders.ErrTransient) {
				t.Fatalf("Decode = %v, want a decode error", err)
			}
			if !strings.Contains(err.Error(), tc.errContains) {
				t.Fatalf("Decode = %v, want it to contain %q", err, tc.errContains)
			}
			if _, _, ok := h.dec.DecodeNamed(tc.data, nil); ok {
				t.Fatal("DecodeNamed took a bad frame")
			}
		})
	}
}

// TestGlueUnknownVersion: a version id Glue does not have is a decode error
// naming it; Glue is asked once per NotFoundTTL, not per record.
func TestGlueUnknownVersion(t *testing.T) {
	h := newGlueHarness(t, nil)
	now := time.Now()
	h.dec.glue.now = func() time.Time { return now }
	const unknown = "0badc0de-0000-4000-8000-00000000beef"
	data := frameGlue(t, unknown, 0, fixture(t, "order_v1"))
	for range 3 {
		_, err := h.dec.Decode(data)
		var de *Error
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "schema version "+unknown+" is not in the Glue Schema Registry") {
			t.Fatalf("Decode = %v, want a decode error naming %s", err, unknown)
		}
	}
	if n := h.client.calls.Load(); n != 1 {
		t.Errorf("GetSchemaVersion called %d times within NotFoundTTL, want 1", n)
	}
	now = now.Add(time.Minute)
	if _, err := h.dec.Decode(data); err == nil {
		t.Fatal("unknown version decoded")
	}
	if n := h.client.calls.Load(); n != 2 {
		t.Errorf("GetSchemaVersion called %d times after NotFoundTTL, want 2", n)
	}
	if h.errors.Load() != 0 {
		t.Errorf("a definite not-found counted as a registry failure %d times", h.errors.Load())
	}
}

// TestGlueNotAvro: a version whose schema is JSON Schema is a decode error.
func TestGlueNotAvro(t *testing.T) {
	h := newGlueHarness(t, nil)
	id := h.moto.Register(t, "shop", "events", "JSON", `{"type":"object"}`)
	_, err := h.dec.Decode(frameGlue(t, id, 0, []byte(`{}`)))
	var de *Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "schema version "+id+" is a JSON schema, not Avro") {
		t.Fatalf("Decode = %v, want a decode error: not Avro", err)
	}
}

// TestGlueCacheHit: each version is fetched once, however many records carry
// it and however many decode it at the same time.
func TestGlueCacheHit(t *testing.T) {
	h := newGlueHarness(t, nil)
	v1 := frameGlue(t, h.ids["order_v1"], 0, fixture(t, "order_v1"))
	v2 := frameGlue(t, h.ids["order_v2"], 5, fixture(t, "order_v2"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := v1
			if i%2 == 1 {
				data = v2
			}
			if _, err := h.dec.Decode(data); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.client.calls.Load(); n != 2 {
		t.Errorf("GetSchemaVersion called %d times for 2 versions, want 2", n)
	}
}

// TestGlueDown: with Glue unreachable, Decode fails with ErrTransient (the
// pipeline retries the record), counts the failure and warns once; once Glue
// answers again, the same record decodes.
func TestGlueDown(t *testing.T) {
	h := newGlueHarness(t, nil)
	data := frameGlue(t, h.ids["order_v1"], 0, fixture(t, "order_v1"))
	h.moto.Stop(t)
	for range 2 {
		_, err := h.dec.Decode(data)
		if !errors.Is(err, decoders.ErrTransient) {
			t.Fatalf("Decode with Glue down = %v, want ErrTransient", err)
		}
		var de *Error
		if errors.As(err, &de) {
			t.Fatalf("Glue down read as bad bytes: %v", err)
		}
	}
	if n := h.errors.Load(); n != 2 {
		t.Errorf("OnRegistryError called %d times for 2 failed calls", n)
	}
	if n := strings.Count(h.logs.String(), "glue schema registry unavailable"); n != 1 {
		t.Errorf("warned %d times for one outage, want once:\n%s", n, h.logs)
	}
	// The same seed and registrations give the same version ids back.
	h.moto.Start(t)
	if again := h.register(t); again["order_v1"] != h.ids["order_v1"] {
		t.Fatalf("moto gave version %s after the restart, %s before", again["order_v1"], h.ids["order_v1"])
	}
	got, err := h.dec.Decode(data)
	if err != nil {
		t.Fatalf("Decode after Glue came back: %v", err)
	}
	assertValue(t, got, avscWant["order_v1"])
	if !strings.Contains(h.logs.String(), "glue schema registry answers again") {
		t.Errorf("no log that Glue answers again:\n%s", h.logs)
	}
}

// TestGlueAccessDenied: credentials Glue refuses are a transient failure (a
// permission granted later cures it) whose error says what to grant; the
// secret key is in no error or log line.
func TestGlueAccessDenied(t *testing.T) {
	moto := motoserver.Start(t, motoserver.Options{Seed: 7, Users: []motoserver.User{{Name: "reader"}}})
	id := moto.RegisterAvro(t, "shop", "orders", string(readFile(t, filepath.Join("testdata", "schemas", "order_v1.avsc"))))
	k := moto.Key(t, "reader")
	logs := &logBuffer{}
	dec, err := New(Config{Glue: &Glue{Client: glue.NewFromConfig(moto.Config(k.ID, k.Secret)), RegistryName: "shop"}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dec.Decode(frameGlue(t, id, 0, fixture(t, "order_v1")))
	if !errors.Is(err, decoders.ErrTransient) {
		t.Fatalf("Decode with access denied = %v, want ErrTransient", err)
	}
	if !strings.Contains(err.Error(), `grant the credentials glue:GetSchemaVersion on the schemas of registry "shop"`) {
		t.Errorf("error does not say what to grant: %v", err)
	}
	if strings.Contains(err.Error(), k.Secret) || strings.Contains(logs.String(), k.Secret) {
		t.Errorf("secret key in the error or the logs: %v\n%s", err, logs)
	}
}
