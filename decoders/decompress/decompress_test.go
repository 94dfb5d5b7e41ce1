package decompress_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

const order = `{"id":7,"amount":1.5,"note":"gift wrap please"}`

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zst compresses b as one frame; withSize false leaves the content size out
// of the header, as a streaming producer does.
func zst(t testing.TB, b []byte, withSize bool) []byte {
	t.Helper()
	if withSize {
		enc, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true)) // the content size in the header
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(b, nil)
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(1<<17))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newDecoder(t testing.TB, inner decoders.Decoder, c decompress.Codec, max int64) decoders.Decoder {
	t.Helper()
	d, err := decompress.New(inner, decompress.Config{Codec: c, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// gzipBomb is gzip members of 1 MiB of zeros each (about 1 KiB apiece, the
// most deflate packs), concatenated as the gzip tool reads them: n KiB or so
// that inflate to n MiB. Each trailer is honest; the last says 1 MiB.
func gzipBomb(t testing.TB, n int) []byte {
	member := gz(t, make([]byte, 1<<20))
	return bytes.Repeat(member, n)
}

// zstdBomb is one zstd frame of n RLE blocks of 128 KiB of zeros, written by
// hand: 4 bytes a block, no content size in the header (it lies by
// omission), a 128 KiB window.
func zstdBomb(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3} // magic; no FCS, no checksum; window 2^(10+7)
	for i := range n {
		h := uint32(1)<<1 | uint32(128<<10)<<3 // RLE block of 128 KiB
		if i == n-1 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

func TestDecode(t *testing.T) {
	plain := []byte(order)
	want, err := jsondec.New().Decode(plain)
	if err != nil {
		t.Fatal(err)
	}
	truncated := gz(t, plain)
	truncated = truncated[:len(truncated)-6]
	badSum := gz(t, plain)
	badSum[len(badSum)-8] ^= 0xff // the CRC-32
	big := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)

	for _, c := range []struct {
		name  string
		codec decompress.Codec
		max   int64
		data  []byte
		// errContains empty: decodes to want (or wantBig, for big).
		errContains string
		tooLarge    bool // the error is a *TooLargeError
		corrupt     bool // the error wraps ErrCorrupt
	}{
		{name: "gzip", codec: decompress.Gzip, data: gz(t, plain)},
		{name: "zstd with content size", codec: decompress.Zstd, data: zst(t, plain, true)},
		{name: "zstd streamed", codec: decompress.Zstd, data: zst(t, plain, false)},
		{name: "zstd two frames", codec: decompress.Zstd, data: append(zst(t, plain[:10], true), zst(t, plain[10:], false)...)},
		{name: "gzip two members", codec: decompress.Gzip, data: append(gz(t, plain[:10]), gz(t, plain[10:])...)},
		{name: "auto plain", codec: decompress.Auto, data: plain},
		{name: "auto gzip", codec: decompress.Auto, data: gz(t, plain)},
		{name: "auto zstd", codec: decompress.Auto, data: zst(t, plain, false)},
		{name: "auto plain invalid keeps the inner error", codec: decompress.Auto, data: []byte(`{"id":`), errContains: "invalid JSON"},
		{name: "none passes compressed bytes through", codec: decompress.None, data: gz(t, plain), errContains: "invalid JSON at byte 1: invalid UTF-8"},
		{name: "gzip of invalid JSON", codec: decompress.Gzip, data: gz(t, []byte(`{"id":`)), errContains: "after gzip decompression: invalid JSON"},
		{name: "gzip refuses a plain record", codec: decompress.Gzip, data: plain, errContains: "gzip payload does not decompress", corrupt: true},
		{name: "zstd refuses a gzip record", codec: decompress.Zstd, data: gz(t, plain), errContains: "zstd payload does not decompress", corrupt: true},
		{name: "empty", codec: decompress.Gzip, data: nil, errContains: "empty payload, not gzip", corrupt: true},
		{name: "truncated gzip", codec: decompress.Auto, data: truncated, errContains: "gzip payload is truncated", corrupt: true},
		{name: "truncated zstd", codec: decompress.Zstd, data: zst(t, big, true)[:20], errContains: "zstd payload", corrupt: true},
		{name: "gzip checksum", codec: decompress.Gzip, data: badSum, errContains: "checksum", corrupt: true},
		{name: "gzip trailing garbage", codec: decompress.Gzip, data: append(gz(t, plain), "junk after the member"...), errContains: "does not decompress", corrupt: true},
		{name: "at the bound", codec: decompress.Gzip, max: int64(len(plain)), data: gz(t, plain)},
		{name: "one over the bound", codec: decompress.Gzip, max: int64(len(plain)) - 1, data: gz(t, plain),
			errContains: fmt.Sprintf("gzip payload decompresses to more than the bound of %d bytes (max_decompressed_bytes)", len(plain)-1), tooLarge: true},
		{name: "zstd one over the bound, declared", codec: decompress.Zstd, max: int64(len(plain)) - 1, data: zst(t, plain, true),
			errContains: fmt.Sprintf("zstd payload declares %d bytes decompressed, over the bound of %d bytes (max_decompressed_bytes)", len(plain), len(plain)-1), tooLarge: true},
		{name: "zstd one over the bound, inflated", codec: decompress.Zstd, max: int64(len(plain)) - 1, data: zst(t, plain, false),
			errContains: fmt.Sprintf("zstd payload decompresses to more than the bound of %d bytes (max_decompressed_bytes)", len(plain)-1), tooLarge: true},
		{name: "gzip members over the bound", codec: decompress.Gzip, data: gzipBomb(t, 11),
			errContains: "gzip payload decompresses to more than the bound of 10485760 bytes (max_decompressed_bytes)", tooLarge: true},
		{name: "auto gzip members over the bound", codec: decompress.Auto, data: gzipBomb(t, 11), tooLarge: true, errContains: "more than the bound"},
		{name: "zstd window over the bound", codec: decompress.Zstd, max: 100 << 10, data: zstdBomb(2),
			errContains: "zstd frame needs a window of 131072 bytes, over the bound of 102400 bytes", tooLarge: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDecoder(t, jsondec.New(), c.codec, c.max)
			v, err := d.Decode(c.data)
			if c.errContains == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(v, want) {
					t.Fatalf("Decode = %#v, want %#v", v, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errContains) {
				t.Fatalf("Decode error = %v, want one containing %q", err, c.errContains)
			}
			var tl *decompress.TooLargeError
			if errors.As(err, &tl) != c.tooLarge {
				t.Errorf("error %q: TooLargeError %v, want %v", err, !c.tooLarge, c.tooLarge)
			}
			if errors.Is(err, decompress.ErrCorrupt) != c.corrupt {
				t.Errorf("error %q: ErrCorrupt %v, want %v", err, !c.corrupt, c.corrupt)
			}
		})
	}
}

// TestLargeRecords crosses the size at which a record is read twice (256
// KiB, counted through the scratch, then read into a slice of its size): a
// record at the bound decodes, one a byte over is refused, both for a
// trailer that tells and for one that does not.
func TestLargeRecords(t *testing.T) {
	const bound = 1 << 20
	record := func(n int) []byte {
		head, tail := `{"pad":"`, `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	for _, c := range []struct {
		name string
		size int
		ok   bool
	}{
		{"under the scratch", 200 << 10, true},
		{"over the scratch", 300 << 10, true},
		{"at the bound", bound, true},
		{"over the bound", bound + 1, false},
	} {
		for _, codec := range []string{"gzip", "gzip without its size", "zstd", "zstd streamed"} {
			t.Run(c.name+"/"+codec, func(t *testing.T) {
				rec := record(c.size)
				var data []byte
				switch codec {
				case "gzip":
					data = gz(t, rec)
				case "gzip without its size":
					data = gz(t, rec)
					binary.LittleEndian.PutUint32(data[len(data)-4:], 0) // the trailer is checked at the end: corrupt, but only there
				case "zstd":
					data = zst(t, rec, true)
				case "zstd streamed":
					data = zst(t, rec, false)
				}
				d := newDecoder(t, jsondec.New(), decompress.Auto, bound).(interface {
					Decompress([]byte) ([]byte, error)
				})
				out, err := d.Decompress(data)
				var tl *decompress.TooLargeError
				switch {
				case codec == "gzip without its size" && c.ok:
					if err == nil || !errors.Is(err, decompress.ErrCorrupt) {
						t.Fatalf("a wrong ISIZE: %v, want a corrupt payload", err)
					}
				case c.ok:
					if err != nil || !bytes.Equal(out, rec) {
						t.Fatalf("Decompress: %d bytes, %v; want the %d bytes", len(out), err, len(rec))
					}
				case !errors.As(err, &tl) || tl.Bound != bound:
					t.Fatalf("Decompress: %v, want a TooLargeError at %d", err, bound)
				}
			})
		}
	}
}

// TestAutoPlainThatLooksCompressed: a raw binary Avro record can start with
// gzip's magic number; under auto it decodes as the plain record it is.
func TestAutoPlainThatLooksCompressed(t *testing.T) {
	inner, err := avrodec.New(avrodec.Config{Framing: avrodec.FramingBinary,
		Schema: `{"type":"record","name":"r","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte{0x1f, 0x8b, 0x01} // a = -16, b = -70
	want, err := inner.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecoder(t, inner, decompress.Auto, 0)
	if got, err := d.Decode(rec); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %v, %v; want %v", got, err, want)
	}
	if _, err := newDecoder(t, inner, decompress.Gzip, 0).Decode(rec); !errors.Is(err, decompress.ErrCorrupt) {
		t.Fatalf("gzip: Decode error = %v, want a corrupt payload", err)
	}
}

// TestBombs: bombs of 1 GiB stop at the bound, as a TooLargeError, having
// allocated a few KiB, not the bound's 10 MiB (nor, as a growing buffer
// would, twice that).
func TestBombs(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"gzip, 1 MiB inflating to 1 GiB", gzipBomb(t, 1024)},
		{"zstd, 32 KiB inflating to 1 GiB", zstdBomb(8192)},
		{"zstd, 1 KiB inflating to 32 MiB", zstdBomb(256)},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDecoder(t, jsondec.New(), decompress.Auto, 0)
			decode := func() {
				v, err := d.Decode(c.data)
				var tl *decompress.TooLargeError
				if v != nil || !errors.As(err, &tl) || tl.Bound != decompress.DefaultMaxBytes || tl.Declared != 0 {
					t.Fatalf("Decode = %v, %v; want a TooLargeError found inflating", v, err)
				}
			}
			decode() // the first makes the reader and scratch the others reuse
			per := allocated(3, decode)
			t.Logf("allocated %d", per)
			if per > 16<<10 {
				t.Errorf("a bomb allocated %d bytes, want under 16 KiB", per)
			}
		})
	}
	// A zstd one that says what it is costs nothing at all.
	honest := zst(t, make([]byte, 11<<20), true)
	d := newDecoder(t, jsondec.New(), decompress.Zstd, 0)
	decode := func() {
		var tl *decompress.TooLargeError
		if _, err := d.Decode(honest); !errors.As(err, &tl) || tl.Declared != 11<<20 {
			t.Fatalf("Decode error = %v, want a TooLargeError of the declared size", err)
		}
	}
	if per := allocated(5, decode); per > 256 {
		t.Errorf("a zstd bomb that declares its size allocated %d bytes, want the error's alone", per)
	}
}

// allocated is the bytes f allocates per run, over runs runs.
func allocated(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestFastPathsKept: wrapping keeps the pipeline's fast paths (ScanJSON,
// DecodeNamed) of the decoders that have them, and hands them the
// decompressed bytes.
func TestFastPathsKept(t *testing.T) {
	type scanner interface {
		ScanJSON(*jsondec.Record, []byte) bool
	}
	type named interface {
		DecodeNamed([]byte, []any) ([]string, []any, bool)
	}
	plain := []byte(order)
	d := newDecoder(t, jsondec.New(), decompress.Auto, 0)
	s, ok := d.(scanner)
	if !ok {
		t.Fatal("a wrapped jsondec has no ScanJSON")
	}
	if _, ok := d.(named); ok {
		t.Fatal("a wrapped jsondec has DecodeNamed")
	}
	for name, data := range map[string][]byte{"gzip": gz(t, plain), "zstd": zst(t, plain, false), "plain": plain} {
		var r jsondec.Record
		if !s.ScanJSON(&r, data) || !bytes.Equal(r.Bytes(), plain) {
			t.Errorf("%s: ScanJSON scanned %q, want %q", name, r.Bytes(), plain)
		}
	}
	var r jsondec.Record
	if s.ScanJSON(&r, gzipBomb(t, 11)) || s.ScanJSON(&r, gz(t, []byte(`[1]`))) {
		t.Error("ScanJSON took a bomb or a gzip array")
	}

	const sch = `{"type":"record","name":"r","fields":[{"name":"id","type":"long"},{"name":"note","type":"string"}]}`
	inner, err := avrodec.New(avrodec.Config{Schema: sch, Framing: avrodec.FramingBinary})
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte{0x0e, 0x08, 'g', 'i', 'f', 't'} // id 7, note "gift"
	wantNames, wantVals, ok := inner.DecodeNamed(rec, nil)
	if !ok {
		t.Fatal("avrodec declined")
	}
	ad := newDecoder(t, inner, decompress.Zstd, 0)
	if _, ok := ad.(scanner); ok {
		t.Fatal("a wrapped avrodec has ScanJSON")
	}
	an, ok := ad.(named)
	if !ok {
		t.Fatal("a wrapped avrodec has no DecodeNamed")
	}
	names, vals, ok := an.DecodeNamed(zst(t, rec, true), nil)
	if !ok || !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(vals, wantVals) {
		t.Errorf("DecodeNamed = %v %v %v, want %v %v", names, vals, ok, wantNames, wantVals)
	}
	if _, _, ok := an.DecodeNamed(rec, nil); ok {
		t.Error("DecodeNamed took a record that is not zstd")
	}

	// A decoder without fast paths gets none.
	d = newDecoder(t, struct{ decoders.Decoder }{jsondec.New()}, decompress.Gzip, 0)
	if _, ok := d.(scanner); ok {
		t.Error("a wrapped plain Decoder has ScanJSON")
	}
}

func TestNew(t *testing.T) {
	inner := jsondec.New()
	if d, err := decompress.New(inner, decompress.Config{Codec: decompress.None}); err != nil || d != decoders.Decoder(inner) {
		t.Errorf("none: New = %v, %v; want the inner decoder itself", d, err)
	}
	for _, c := range []struct {
		name        string
		inner       decoders.Decoder
		cfg         decompress.Config
		errContains string
	}{
		{"unknown codec", inner, decompress.Config{Codec: "lz4"}, `"lz4" is not a compression; use none, gzip, zstd or auto`},
		{"no codec", inner, decompress.Config{}, `"" is not a compression`},
		{"negative bound", inner, decompress.Config{Codec: decompress.Gzip, MaxBytes: -1}, "bound of -1 bytes is out of range"},
		{"huge bound", inner, decompress.Config{Codec: decompress.Gzip, MaxBytes: 1 << 40}, "out of range; use 1 to 1073741824"},
		{"no inner", nil, decompress.Config{Codec: decompress.Gzip}, "no decoder to wrap"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decompress.New(c.inner, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.errContains) {
				t.Fatalf("New error = %v, want one containing %q", err, c.errContains)
			}
		})
	}
}

// TestConcurrent: one Decoder, many goroutines, readers reused between
// them (go test -race finds sharing).
func TestConcurrent(t *testing.T) {
	d := newDecoder(t, jsondec.New(), decompress.Auto, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				rec := []byte(fmt.Sprintf(`{"id":%d}`, g*1000+i))
				data := gz(t, rec)
				if i%2 == 1 {
					data = zst(t, rec, false)
				}
				v, err := d.Decode(data)
				if err != nil {
					t.Error(err)
					return
				}
				if got := fmt.Sprint(v.(map[string]any)["id"]); got != fmt.Sprint(g*1000+i) {
					t.Errorf("id %s, want %d", got, g*1000+i)
				}
			}
		}()
	}
	wg.Wait()
}
