package jsontext

import (
	"strings"
	"testing"
)

// PlainLen against the byte-by-byte definition, with the first special byte
// at every offset of every 8-byte block and each kind of special byte.
func TestPlainLen(t *testing.T) {
	naive := func(s string) int {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return i
			}
		}
		return len(s)
	}
	specials := []byte{0x00, 0x1f, '"', '\\', 0x80, 0xff, 0xc3}
	plains := []byte{' ', '!', '#', '[', ']', '~', 0x7f, 'a', '0'}
	for n := 0; n <= 24; n++ {
		for _, p := range plains {
			base := strings.Repeat(string(p), n)
			if got, want := PlainLen(base), naive(base); got != want {
				t.Errorf("PlainLen(%q) = %d, want %d", base, got, want)
			}
			for at := 0; at < n; at++ {
				for _, sp := range specials {
					b := []byte(base)
					b[at] = sp
					s := string(b)
					if got, want := PlainLen(s), naive(s); got != want {
						t.Errorf("PlainLen(%q) = %d, want %d", s, got, want)
					}
				}
			}
		}
	}
}
