// Package jsontext holds the byte-level helpers that the JSON scanner
// (schema) and the JSON writer (sinks/jsonenc) share, so that both agree on
// which bytes of a string need attention.
package jsontext

const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// PlainLen returns the length of the longest prefix of s whose bytes need no
// attention inside a JSON string, whether it is read or written: ASCII from
// 0x20 on, except '"' and '\\'. Eight bytes are tested at a time (SWAR): the
// strings of a record (notes, SKUs, ids) are mostly such runs, and a byte
// loop over them was the scanner's and the writer's largest cost.
func PlainLen(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// The compiler merges these loads into one 64-bit load, and the
		// slice spares seven of the eight bounds checks.
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q := x ^ (lo * '"')
		b := x ^ (lo * '\\')
		// A high bit set in any term marks a byte below 0x20, a '"', a '\\'
		// or a non-ASCII byte (x itself); borrows can only add marks after a
		// real one, so "no mark" is exact.
		if ((x-lo*0x20)&^x|(q-lo)&^q|(b-lo)&^b|x)&hi != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			break
		}
	}
	return i
}
