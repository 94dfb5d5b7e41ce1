package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// compressWith compresses b with the system tool (gzip or zstd, an
// implementation independent of the worker's) when it is on PATH, else with
// a Go encoder.
func compressWith(t *testing.T, tool string, b []byte) []byte {
	t.Helper()
	if p, err := exec.LookPath(tool); err == nil {
		cmd := exec.Command(p, "-c", "-q")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -c: %v", tool, err)
		}
		return out
	}
	t.Logf("no %s on PATH: compressing with a Go encoder", tool)
	var buf bytes.Buffer
	switch tool {
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
	}
	return buf.Bytes()
}

// TestCompressedRecords: a source with compression: auto receives JSON
// records gzipped, zstd-compressed (by the system tools) and plain, a gzip
// bomb (100 KiB that inflate to 100 MiB), and a truncated gzip record. Every
// good record is one row; the bomb is a decode_error dead letter naming the
// bound, the truncated record one saying so, each with the record's bytes as
// they came.
func TestCompressedRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	const n = 60
	data, keys, _ := orders(0, n, false)
	for i := range data {
		switch i % 3 {
		case 0:
			data[i] = compressWith(t, "gzip", data[i])
		case 1:
			data[i] = compressWith(t, "zstd", data[i])
		}
	}
	bomb := bytes.Repeat(compressWith(t, "gzip", make([]byte, 1<<20)), 100)
	truncated := compressWith(t, "gzip", []byte(`{"id":999,"amount":1.25,"ts":"2026-11-01T12:00:00Z","note":null}`))
	truncated = truncated[:len(truncated)/2]
	bad := map[string][]byte{"bomb": bomb, "truncated": truncated}
	for _, k := range []string{"bomb", "truncated"} {
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
	body = bytes.Replace(body, []byte(format), []byte(format+"      compression: auto\n"), 1)
	if err := os.WriteFile(cfg, body, 0o644); err != nil {
		t.Fatal(err)
	}
	w := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "every record as a row or a dead letter", func() bool {
		return len(e.rows())+len(e.letters()) >= len(data)
	})
	w.stop(30 * time.Second)

	ids := idsOf(e.rows())
	for i := range n {
		if ids[int64(i)] != 1 {
			t.Errorf("record %d (%s): %d rows, want 1", i, []string{"gzip", "zstd", "plain"}[i%3], ids[int64(i)])
		}
	}
	if len(ids) != n {
		t.Errorf("rows of %d ids, want %d", len(ids), n)
	}
	letters := e.letters()
	if len(letters) != len(bad) {
		t.Errorf("%d dead letters, want %d", len(letters), len(bad))
	}
	want := map[string]string{
		"bomb":      "gzip payload decompresses to more than the bound of " + strconv.Itoa(10<<20) + " bytes (max_decompressed_bytes)",
		"truncated": "gzip payload is truncated",
	}
	for _, l := range letters {
		if l.Reason != "decode_error" || !strings.Contains(l.Error, want[l.PartitionKey]) {
			t.Errorf("%s: %s %q, want decode_error containing %q", l.PartitionKey, l.Reason, l.Error, want[l.PartitionKey])
		}
		if !bytes.Equal(l.Data, bad[l.PartitionKey]) {
			t.Errorf("%s: the dead letter's data (%d bytes) is not the record as put (%d bytes)", l.PartitionKey, len(l.Data), len(bad[l.PartitionKey]))
		}
	}
}
