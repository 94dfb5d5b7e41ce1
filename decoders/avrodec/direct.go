package avrodec

import (
	"encoding/binary"
	"math"
	"time"
	"unsafe"
)

// directReader decodes a payload the checker has passed straight into the
// decoders.Decoder value tree, in one pass and without goavro: the value
// normalize(goavro's NativeFromBinary) gives, the same Go types and values,
// which FuzzDecode and TestDirectMatchesGoavro check. goavro built a wrapper
// map for every union and a closure call per value, and normalize walked the
// result again: for a record of eight fields that was more than the whole
// JSON path costs.
//
// Types with noDirect (decimals, which goavro gives as *big.Rat) are left to
// goavro, and so is a map with a repeated key (goavro's error names it): ok
// false.
type directReader struct {
	buf []byte
	pos int
}

func (d *directReader) long() int64 {
	var u uint64
	for shift := uint(0); ; shift += 7 {
		b := d.buf[d.pos]
		d.pos++
		u |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return int64(u>>1) ^ -int64(u&1)
		}
	}
}

func (d *directReader) bytes() []byte {
	l := int(d.long())
	b := d.buf[d.pos : d.pos+l]
	d.pos += l
	return b
}

func (d *directReader) value(n *node) (any, bool) {
	switch n.kind {
	case kNull:
		return nil, true
	case kBoolean:
		b := d.buf[d.pos]
		d.pos++
		return b == 1, true
	case kInt:
		i := int32(d.long())
		switch {
		case n.key == "int.date":
			return time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(i)).UTC(), true
		case n.logical == lTimeMillis:
			return int32((time.Duration(i) * time.Millisecond) / time.Millisecond), true
		}
		return i, true
	case kLong:
		i := d.long()
		switch {
		case n.key == "long.timestamp-millis":
			sec := i / 1e3
			return time.Unix(sec, (i-sec*1e3)*1e6).UTC(), true
		case n.key == "long.timestamp-micros":
			sec := i / 1e6
			return time.Unix(sec, (i-sec*1e6)*1e3).UTC(), true
		case n.logical == lTimeMicros:
			return int64((time.Duration(i) * time.Microsecond) / time.Microsecond), true
		case n.logical == lLocalMillis:
			return time.UnixMilli(i).UTC(), true
		case n.logical == lLocalMicros:
			return time.UnixMicro(i).UTC(), true
		}
		return i, true
	case kFloat:
		f := math.Float32frombits(binary.LittleEndian.Uint32(d.buf[d.pos:]))
		d.pos += 4
		return f, true
	case kDouble:
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.pos:]))
		d.pos += 8
		return f, true
	case kBytes:
		return d.bytes(), true
	case kString:
		// The record's own bytes, as bytes values are: a copy per string
		// was a third of an Avro record's allocations.
		if b := d.bytes(); len(b) > 0 {
			return unsafe.String(&b[0], len(b)), true
		}
		return "", true
	case kFixed:
		b := d.buf[d.pos : d.pos+n.size]
		d.pos += n.size
		if n.logical == lUUIDFixed {
			return formatUUID(b), true
		}
		return b, true
	case kEnum:
		return n.symbolNames[d.long()], true
	case kUnion:
		return d.value(n.branches[d.long()])
	case kRecord:
		m := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			v, ok := d.value(f.node)
			if !ok {
				return nil, false
			}
			m[f.name] = v
		}
		return m, true
	case kArray:
		count := d.blockCount()
		out := make([]any, 0, count)
		for count != 0 {
			for ; count > 0; count-- {
				v, ok := d.value(n.elem)
				if !ok {
					return nil, false
				}
				out = append(out, v)
			}
			count = d.blockCount()
		}
		return out, true
	case kMap:
		count := d.blockCount()
		out := make(map[string]any, count)
		for count != 0 {
			for ; count > 0; count-- {
				k := string(d.bytes())
				if _, dup := out[k]; dup {
					return nil, false
				}
				v, ok := d.value(n.elem)
				if !ok {
					return nil, false
				}
				out[k] = v
			}
			count = d.blockCount()
		}
		return out, true
	}
	return nil, false
}

// blockCount reads an array or map block's count, skipping the block size
// that a negative count brings.
func (d *directReader) blockCount() int64 {
	c := d.long()
	if c < 0 {
		c = -c
		d.long()
	}
	return c
}
