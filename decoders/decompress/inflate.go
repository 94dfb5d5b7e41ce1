package decompress

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// state is one record's readers and scratch, reused from record to record.
type state struct {
	src bytes.Reader
	gz  gzip.Reader // its zero value is ready for Reset
	zs  *zstd.Decoder
	// buf is the scratch output is read into before it is copied out at its
	// exact size, and what a record over scratchMax is counted through.
	buf []byte
}

// scratchMax is the most scratch a state keeps. A record that decompresses
// to more is read twice: once through the scratch to count its size against
// the bound, keeping nothing, then into a slice of exactly that size. So a
// bomb allocates nothing while it runs up to the bound, and only records
// over 256 KiB decompressed (rare, and costly to decode anyway) pay the
// second inflate.
const scratchMax = 256 << 10

// scratchMin is the scratch a fresh state starts with.
const scratchMin = 4 << 10

// largeWindow: a state whose zstd decoder ran a frame with a window over
// this is not kept, since the decoder keeps a ring of the window's size. 8
// MiB is the largest window zstd's levels 1 to 19 choose for a stream of
// unknown size (a record compressed whole declares one no larger than
// itself), so the usual producers' rings are reused, not made per record.
const largeWindow = 8 << 20

func (d *Decoder) decompress(c Codec, data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty payload, not %s: %w", c, ErrCorrupt)
	}
	window, err := d.declared(c, data)
	if err != nil {
		return nil, err
	}
	st, ok := d.states.Get()
	if !ok {
		st = &state{}
	}
	out, err := d.inflate(st, c, data)
	st.src.Reset(nil) // keep no record alive from the list
	if cap(st.buf) <= scratchMax && window <= largeWindow {
		d.states.Put(st)
	}
	return out, err
}

// declared refuses a zstd record whose frame header says it decompresses
// to more than the bound, or needs a larger window, before any inflating
// (window is its window size). gzip's trailer gives only the last member's
// size modulo 2^32, and a truncated or corrupt record's trailer is noise, so
// a gzip record is judged by the limit on what is read.
func (d *Decoder) declared(c Codec, data []byte) (window uint64, err error) {
	if c != Zstd {
		return 0, nil
	}
	var h zstd.Header
	if h.Decode(data) != nil {
		return 0, nil // inflating reports it
	}
	if h.HasFCS && h.FrameContentSize > uint64(d.max) {
		return 0, &TooLargeError{Codec: c, Bound: d.max, Declared: h.FrameContentSize}
	}
	if h.WindowSize > uint64(d.window()) {
		return 0, &TooLargeError{Codec: c, Bound: d.max, Window: h.WindowSize}
	}
	return h.WindowSize, nil
}

// window is the largest zstd window accepted: the bound, since the decoder
// allocates a window's ring up front, and no match reaches further back than
// the output's size. zstd's own streaming levels up to 19 use at most 8 MiB,
// under the default bound.
func (d *Decoder) window() int64 { return max(d.max, zstd.MinWindowSize) }

// open resets st's reader of codec c to read data.
func (d *Decoder) open(st *state, c Codec, data []byte) (io.Reader, error) {
	st.src.Reset(data)
	if c == Gzip {
		if err := st.gz.Reset(&st.src); err != nil {
			return nil, err
		}
		return &st.gz, nil
	}
	if st.zs == nil {
		zs, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // synchronous: no goroutines to leak from a dropped state
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(d.window())),
			zstd.WithDecoderMaxMemory(uint64(d.window())))
		if err != nil {
			return nil, err
		}
		st.zs = zs
	}
	if err := st.zs.Reset(&st.src); err != nil {
		return nil, err
	}
	return st.zs, nil
}

// inflate decompresses data with st.
func (d *Decoder) inflate(st *state, c Codec, data []byte) ([]byte, error) {
	r, err := d.open(st, c, data)
	if err != nil {
		return nil, d.corrupt(c, err)
	}
	limit := min(d.max+1, scratchMax)
	if cap(st.buf) == 0 {
		st.buf = make([]byte, 0, min(limit, max(scratchMin, int64(4*len(data)))))
	}
	n, eof, err := fill(r, &st.buf, int(limit))
	switch {
	case err != nil:
		return nil, d.corrupt(c, err)
	case int64(n) > d.max || !eof && limit > d.max:
		return nil, &TooLargeError{Codec: c, Bound: d.max}
	case eof:
		return bytes.Clone(st.buf[:n]), nil
	}
	// Over the scratch but maybe within the bound: count the rest, keeping
	// nothing, then read it again into a slice of its size.
	total := int64(n)
	for {
		m, err := r.Read(st.buf[:cap(st.buf)])
		total += int64(m)
		if total > d.max {
			return nil, &TooLargeError{Codec: c, Bound: d.max}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, d.corrupt(c, err)
		}
	}
	out := make([]byte, total)
	if r, err = d.open(st, c, data); err == nil {
		_, err = io.ReadFull(r, out)
	}
	if err != nil {
		return nil, d.corrupt(c, err)
	}
	return out, nil
}

// fill reads r into *buf until EOF or limit bytes, growing *buf (by
// doubling, up to limit) as it fills; eof says r ended within the limit.
func fill(r io.Reader, buf *[]byte, limit int) (n int, eof bool, err error) {
	b := (*buf)[:min(cap(*buf), limit)]
	for {
		if n == len(b) {
			if len(b) >= limit {
				return n, false, nil
			}
			nb := make([]byte, min(limit, max(2*len(b), scratchMin)))
			copy(nb, b[:n])
			b = nb
			*buf = nb[:0]
		}
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
}

// corrupt is the decode error of a record that does not decompress.
func (d *Decoder) corrupt(c Codec, err error) error {
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return &TooLargeError{Codec: c, Bound: d.max}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s payload is truncated: %w", c, ErrCorrupt)
	}
	return fmt.Errorf("%s payload does not decompress: %w: %w", c, ErrCorrupt, err)
}
