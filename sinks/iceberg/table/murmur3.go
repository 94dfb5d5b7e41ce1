package table

import (
	"encoding/binary"
	"math/bits"
)

// murmur3x86_32 is MurmurHash3's x86 32-bit variant with seed 0, the hash the
// spec's bucket transform is defined on (Appendix B). Written from the
// algorithm's description; checked against the spec's test vectors.
func murmur3x86_32(data []byte) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	var h uint32
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
		data = data[4:]
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// hashLong is the spec's hashLong: the 8 little-endian bytes of v. Ints,
// dates, times and timestamps all hash this way, so that promoting int to
// long keeps every bucket.
func hashLong(v int64) int32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	return int32(murmur3x86_32(b[:]))
}

func hashBytes(b []byte) int32 { return int32(murmur3x86_32(b)) }
