package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/motoserver"
)

// avscEncode writes each value with avsc (npm, an Avro implementation
// independent of the worker's) in the schema's binary encoding and, when
// deflate is set for it, zlib-compresses it with Node's zlib, as Glue's
// serializers do with compression on.
func avscEncode(t *testing.T, schema string, values []any, deflate []bool) [][]byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: Node.js is a prerequisite (README): %v", err)
	}
	avsc, err := filepath.Abs(filepath.Join("..", "..", "decoders", "avrodec", "testdata", "js", "node_modules", "avsc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(avsc); err != nil {
		t.Fatalf("avsc is not installed in %s: run make deps", filepath.Dir(avsc))
	}
	in, err := json.Marshal(map[string]any{"schema": json.RawMessage(schema), "values": values, "deflate": deflate})
	if err != nil {
		t.Fatal(err)
	}
	const script = `
const avro = require(process.argv[1]);
const zlib = require('zlib');
const inp = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const type = avro.Type.forSchema(inp.schema);
for (const [i, v] of inp.values.entries()) {
  let b = type.toBuffer(v);
  if (inp.deflate[i]) b = zlib.deflateSync(b);
  console.log(b.toString('hex'));
}`
	cmd := exec.Command(node, "-e", script, avsc)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("avsc: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(values) {
		t.Fatalf("avsc wrote %d records, want %d", len(lines), len(values))
	}
	recs := make([][]byte, len(lines))
	for i, l := range lines {
		if recs[i], err = hex.DecodeString(l); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

// glueFramed frames a record as Glue's serializers document it: header
// version 3, compression (0 none, 5 zlib), the 16 bytes of the schema
// version id's UUID, the record.
func glueFramed(t *testing.T, versionID string, zlib bool, record []byte) []byte {
	t.Helper()
	id, err := hex.DecodeString(strings.ReplaceAll(versionID, "-", ""))
	if err != nil || len(id) != 16 {
		t.Fatalf("%q is not a UUID", versionID)
	}
	compression := byte(0)
	if zlib {
		compression = 5
	}
	return append(append([]byte{3, compression}, id...), record...)
}

// TestGlueSchemaRegistry: a stream of Avro records in AWS Glue Schema
// Registry's wire format, written with two versions of a schema registered
// in moto's Glue (an implementation independent of the worker's), every
// other record zlib-compressed. Every record is one row; a record naming a
// version id the registry does not have and a frame cut inside its header
// are decode_error dead letters saying so (the first naming the id), with
// the record's bytes as they came. Nothing is lost.
func TestGlueSchemaRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	moto := motoserver.Start(t, motoserver.Options{})
	const v1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"long"},{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"note","type":["null","string"],"default":null}]}`
	const v2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"long"},{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"channel","type":"string","default":"web"}]}`
	id1 := moto.RegisterAvro(t, "shop", "orders", v1)
	id2 := moto.RegisterAvro(t, "shop", "orders", v2)
	if id1 == id2 {
		t.Fatalf("two versions, one id %s", id1)
	}

	const n = 40
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var vals1, vals2 []any
	var zip1, zip2 []bool
	for i := range n {
		v := map[string]any{"id": i, "amount": float64(i) + 0.25, "ts": base.Add(time.Duration(i) * time.Second).UnixMilli(), "note": nil}
		if i%4 == 1 {
			v["note"] = fmt.Sprintf("note %d", i) // avsc takes a ["null", T] union's value unwrapped
		}
		if i%2 == 0 {
			vals1, zip1 = append(vals1, v), append(zip1, i%4 == 0)
		} else {
			v["channel"] = "app"
			vals2, zip2 = append(vals2, v), append(zip2, i%4 == 3)
		}
	}
	recs1, recs2 := avscEncode(t, v1, vals1, zip1), avscEncode(t, v2, vals2, zip2)
	var data [][]byte
	var keys []string
	for i := range n {
		if i%2 == 0 {
			data = append(data, glueFramed(t, id1, zip1[i/2], recs1[i/2]))
		} else {
			data = append(data, glueFramed(t, id2, zip2[i/2], recs2[i/2]))
		}
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	const unknown = "0badc0de-0000-4000-8000-00000000beef"
	bad := map[string][]byte{
		"unknown":   glueFramed(t, unknown, false, recs1[0]),
		"truncated": glueFramed(t, id1, false, recs1[1])[:10],
	}
	for _, k := range []string{"unknown", "truncated"} {
		data, keys = append(data, bad[k]), append(keys, k)
	}
	e.put(data, keys)

	cfg := e.config("trim_horizon")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const format = "      format: json\n"
	if !bytes.Contains(body, []byte(format)) {
		t.Fatalf("the config template has no line %q", format)
	}
	body = bytes.Replace(body, []byte(format), []byte("      format: {avro: {registry: {glue: {registry_name: shop}}}}\n"), 1)
	if err := os.WriteFile(cfg, body, 0o644); err != nil {
		t.Fatal(err)
	}
	e.extra = append(e.extra, "AWS_ENDPOINT_URL_GLUE="+moto.URL)
	w := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "every record as a row or a dead letter", func() bool {
		return len(e.rows())+len(e.letters()) >= len(data)
	})
	w.stop(30 * time.Second)

	rows := e.rows()
	ids := idsOf(rows)
	for i := range n {
		if ids[int64(i)] != 1 {
			t.Errorf("record %d: %d rows, want 1", i, ids[int64(i)])
		}
	}
	if len(rows) != n {
		t.Errorf("%d rows, want %d", len(rows), n)
	}
	for _, r := range rows {
		wantTS := base.Add(time.Duration(r.ID) * time.Second)
		ts, err := time.Parse(time.RFC3339Nano, r.TS)
		if r.Amount != float64(r.ID)+0.25 || err != nil || !ts.Equal(wantTS) {
			t.Errorf("row %d: amount %v ts %s, want %v and %s", r.ID, r.Amount, r.TS, float64(r.ID)+0.25, wantTS.Format(time.RFC3339))
		}
		if wantNote := r.ID%4 == 1; (r.Note != nil) != wantNote || (wantNote && *r.Note != fmt.Sprintf("note %d", r.ID)) {
			t.Errorf("row %d: note %v", r.ID, r.Note)
		}
	}
	letters := e.letters()
	if len(letters) != len(bad) {
		t.Errorf("%d dead letters, want %d", len(letters), len(bad))
	}
	want := map[string]string{
		"unknown":   "schema version " + unknown + " is not in the Glue Schema Registry",
		"truncated": "payload ends inside the Glue header",
	}
	for _, l := range letters {
		if l.Reason != "decode_error" || !strings.Contains(l.Error, want[l.PartitionKey]) {
			t.Errorf("%s: %s %q, want decode_error containing %q", l.PartitionKey, l.Reason, l.Error, want[l.PartitionKey])
		}
		if !bytes.Equal(l.Data, bad[l.PartitionKey]) {
			t.Errorf("%s: the dead letter's data is not the record as put", l.PartitionKey)
		}
	}
}
