package decompress_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

// fuzzBound is small, so that the fuzzer reaches it often.
const fuzzBound = 4096

// FuzzDecompress: any bytes, under every codec, either decompress to at most
// the bound, to exactly what the reference readers (compress/gzip, a fresh
// zstd decoder) make of them, or fail with a TooLargeError or ErrCorrupt;
// never a panic. Decode agrees with Decompress.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte(order))
	f.Add(gz(f, []byte(order)))
	f.Add(zst(f, []byte(order), true))
	f.Add(zst(f, []byte(order), false))
	f.Add(gz(f, make([]byte, 2*fuzzBound)))
	f.Add(zstdBomb(2))
	f.Add(append(gz(f, []byte(`{"a":`)), gz(f, []byte(`1}`))...))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	ref, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	defer ref.Close()
	type decompressor interface {
		Decompress([]byte) ([]byte, error)
	}
	decs := map[decompress.Codec]decompressor{}
	for _, c := range []decompress.Codec{decompress.Gzip, decompress.Zstd, decompress.Auto} {
		decs[c] = newDecoder(f, jsondec.New(), c, fuzzBound).(decompressor)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for c, d := range decs {
			out, err := d.Decompress(data)
			if err != nil {
				var tl *decompress.TooLargeError
				if !errors.As(err, &tl) && !errors.Is(err, decompress.ErrCorrupt) {
					t.Fatalf("%s: Decompress(%q): an error of neither kind: %v", c, data, err)
				}
				if _, derr := d.(interface{ Decode([]byte) (any, error) }).Decode(data); derr == nil && c != decompress.Auto {
					t.Fatalf("%s: Decode(%q) took what Decompress refused: %v", c, data, err)
				}
				continue
			}
			if len(out) > fuzzBound {
				t.Fatalf("%s: Decompress(%q) gave %d bytes, over the bound %d", c, data, len(out), fuzzBound)
			}
			codec := c
			if c == decompress.Auto {
				switch {
				case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
					codec = decompress.Gzip
				case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
					codec = decompress.Zstd
				default:
					if !bytes.Equal(out, data) {
						t.Fatalf("auto: plain %q came out as %q", data, out)
					}
					continue
				}
			}
			var want []byte
			switch codec {
			case decompress.Gzip:
				zr, err := gzip.NewReader(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("gzip: Decompress(%q) took what compress/gzip refuses: %v", data, err)
				}
				if want, err = io.ReadAll(io.LimitReader(zr, fuzzBound+1)); err != nil {
					t.Fatalf("gzip: Decompress(%q) took what compress/gzip refuses: %v", data, err)
				}
			case decompress.Zstd:
				if want, err = ref.DecodeAll(data, nil); err != nil {
					t.Fatalf("zstd: Decompress(%q) took what zstd refuses: %v", data, err)
				}
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("%s: Decompress(%q) = %q, the reference reader gives %q", codec, data, out, want)
			}
		}
	})
}
