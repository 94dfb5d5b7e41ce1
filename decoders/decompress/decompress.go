// Package decompress wraps a decoders.Decoder so that it reads compressed
// records: gzip, zstd, or either one recognized by its magic number (auto),
// each inflated to at most a bound before the wrapped decoder sees it.
//
// The bound is what a hostile record can cost: output is read through a
// limit of bound+1 bytes into a reused scratch buffer, so a record over the
// bound stops there, as a decode error naming the bound, having allocated
// nothing of its own (but, for zstd, the frame's window, at most the bound,
// which the decoder allocates once and reuses up to 8 MiB); a zstd record
// whose frame header declares a size (or window) over the bound is refused
// before any inflating. A record within the bound gets one allocation of
// exactly its decompressed size (the wrapped decoder's values may share that
// memory, so it cannot be reused).
//
// The pipeline's fast paths stay on: the wrapper has ScanJSON when the
// wrapped decoder has it (jsondec), and DecodeNamed when it has that
// (avrodec), both handed the decompressed bytes, never the compressed ones.
package decompress

import (
	"errors"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
)

// Codec says how a source's records are compressed.
type Codec string

// Codecs.
const (
	// None: records are passed to the wrapped decoder as they are; New
	// returns that decoder itself.
	None Codec = "none"
	// Gzip: every record is gzip (RFC 1952, members concatenated as the
	// gzip tool does); anything else is a decode error.
	Gzip Codec = "gzip"
	// Zstd: every record is one or more zstd frames.
	Zstd Codec = "zstd"
	// Auto: a record starting with gzip's magic number (1f 8b) is gzip, one
	// starting with zstd's (28 b5 2f fd) is zstd, any other is plain and
	// passed through. A record that starts with a magic number by chance (a
	// raw Avro record may) but does not decompress is tried as plain too; if
	// that fails as well, the decompression error is the one reported.
	Auto Codec = "auto"
)

// DefaultMaxBytes is the default bound on a record's decompressed size: 10
// MiB, the largest record Kinesis accepts uncompressed. A record that
// decompresses within it is no bigger than a plain record can be, so nothing
// downstream (row sizes, sink batches, the errors view) meets anything new;
// a stream of records that decompress to more must say so by raising the
// bound. At deflate's ratio of at most about 1,000:1, 10 KiB of gzip can
// reach it, so a 1 MiB bomb is stopped after its first hundredth.
const DefaultMaxBytes = 10 << 20

// Config configures a Decoder.
type Config struct {
	Codec Codec // required
	// MaxBytes bounds a record's decompressed size; 0 is DefaultMaxBytes.
	MaxBytes int64
}

// TooLargeError is the decode error of a record that decompresses to more
// than the bound, or that declares it would.
type TooLargeError struct {
	Codec Codec
	Bound int64
	// Declared is the size the record's zstd frame header gives, when that
	// is what was over the bound; 0 when inflating was.
	Declared uint64
	// Window is a zstd frame's window size when that was over the bound.
	Window uint64
}

func (e *TooLargeError) Error() string {
	switch {
	case e.Declared > 0:
		return fmt.Sprintf("%s payload declares %d bytes decompressed, over the bound of %d bytes (max_decompressed_bytes)", e.Codec, e.Declared, e.Bound)
	case e.Window > 0:
		return fmt.Sprintf("%s frame needs a window of %d bytes, over the bound of %d bytes (max_decompressed_bytes)", e.Codec, e.Window, e.Bound)
	}
	return fmt.Sprintf("%s payload decompresses to more than the bound of %d bytes (max_decompressed_bytes)", e.Codec, e.Bound)
}

// ErrCorrupt marks a record that is not valid in its codec: a bad header,
// truncated, a checksum mismatch, trailing garbage.
var ErrCorrupt = errors.New("corrupt compressed payload")

// Decoder decompresses each record, then decodes it with the wrapped
// decoder. Safe for concurrent use, as the wrapped decoder is.
type Decoder struct {
	inner decoders.Decoder
	codec Codec
	max   int64
	// states are the readers and scratch buffers, reused from record to
	// record: a gzip reader is 40 KiB of tables and window, a zstd decoder
	// more, and the scratch grows to the usual record's size once.
	states *freelist.List[*state]
}

var _ decoders.Decoder = (*Decoder)(nil)

// keptStates is how many readers a Decoder keeps between records: about the
// batches a worker decodes at once, as the pipeline's own freelists.
const keptStates = 8

// New returns inner wrapped to decompress records by cfg. With codec None
// it returns inner itself. The result has ScanJSON when inner has it, and
// DecodeNamed when inner has that, so that the pipeline's fast paths see
// decompressed bytes.
func New(inner decoders.Decoder, cfg Config) (decoders.Decoder, error) {
	if inner == nil {
		return nil, errors.New("decompress: no decoder to wrap")
	}
	switch cfg.Codec {
	case None:
		return inner, nil
	case Gzip, Zstd, Auto:
	default:
		return nil, fmt.Errorf("decompress: %q is not a compression; use none, gzip, zstd or auto", cfg.Codec)
	}
	if cfg.MaxBytes < 0 || cfg.MaxBytes > MaxBound {
		return nil, fmt.Errorf("decompress: bound of %d bytes is out of range; use 1 to %d, or 0 for the default %d", cfg.MaxBytes, int64(MaxBound), DefaultMaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	d := &Decoder{inner: inner, codec: cfg.Codec, max: cfg.MaxBytes, states: freelist.New[*state](keptStates)}
	switch in := inner.(type) {
	case jsonScanner:
		return &jsonDecoder{d, in}, nil
	case namedDecoder:
		return &namedDec{d, in}, nil
	}
	return d, nil
}

// MaxBound is the largest bound New takes: a record is decompressed into
// memory whole, and several are at once.
const MaxBound = 1 << 30

// Decode decompresses data and decodes the result with the wrapped decoder.
// A record over the bound is a *TooLargeError, one that does not decompress
// wraps ErrCorrupt; the wrapped decoder's errors are wrapped as they are
// (decoders.ErrTransient stays visible to errors.Is).
func (d *Decoder) Decode(data []byte) (any, error) {
	c := d.codecOf(data)
	if c == None {
		return d.inner.Decode(data)
	}
	out, err := d.decompress(c, data)
	if err != nil {
		if d.plainToo(err) {
			if v, perr := d.inner.Decode(data); perr == nil {
				return v, nil
			}
		}
		return nil, err
	}
	v, err := d.inner.Decode(out)
	if err != nil {
		return nil, fmt.Errorf("after %s decompression: %w", c, err)
	}
	return v, nil
}

// Decompress returns data decompressed: as it is for a plain record under
// Auto; otherwise a new slice of its decompressed bytes.
func (d *Decoder) Decompress(data []byte) ([]byte, error) {
	c := d.codecOf(data)
	if c == None {
		return data, nil
	}
	return d.decompress(c, data)
}

// codecOf is the codec data is read with: None for a plain record.
func (d *Decoder) codecOf(data []byte) Codec {
	if d.codec != Auto {
		return d.codec
	}
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return Gzip
	case len(data) >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd:
		return Zstd
	}
	return None
}

// plainToo says whether a record that failed to decompress with err may be
// plain after all: only under Auto (whose magic numbers a plain record can
// start with by chance), and not when inflating ran over the bound, which
// only a real compressed stream does.
func (d *Decoder) plainToo(err error) bool {
	var tl *TooLargeError
	return d.codec == Auto && !(errors.As(err, &tl) && tl.Declared == 0 && tl.Window == 0)
}

// jsonScanner and namedDecoder are the pipeline's fast-path interfaces
// (pipeline.JSONScanner, pipeline.NamedDecoder), as the wrapped decoder has
// them.
type jsonScanner interface {
	decoders.Decoder
	ScanJSON(rec *jsondec.Record, data []byte) bool
}

type namedDecoder interface {
	decoders.Decoder
	DecodeNamed(data []byte, vals []any) (names []string, out []any, ok bool)
}

// jsonDecoder is a Decoder whose wrapped decoder scans JSON in place.
type jsonDecoder struct {
	*Decoder
	scan jsonScanner
}

// ScanJSON scans data decompressed. false (data does not decompress, or is
// not a JSON object) means only "call Decode", which gives the error.
func (d *jsonDecoder) ScanJSON(rec *jsondec.Record, data []byte) bool {
	out, err := d.Decompress(data)
	if err != nil {
		return false
	}
	return d.scan.ScanJSON(rec, out)
}

// namedDec is a Decoder whose wrapped decoder decodes Avro records' fields
// without a map.
type namedDec struct {
	*Decoder
	named namedDecoder
}

// DecodeNamed decodes data decompressed; ok false means "call Decode".
func (d *namedDec) DecodeNamed(data []byte, vals []any) (names []string, out []any, ok bool) {
	b, err := d.Decompress(data)
	if err != nil {
		return nil, vals, false
	}
	return d.named.DecodeNamed(b, vals)
}
