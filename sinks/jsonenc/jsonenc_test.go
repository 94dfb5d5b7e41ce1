package jsonenc

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// ValidUTF8 replaces invalid bytes exactly as AppendString writes them, so a
// file row and a PostgreSQL row of the same record hold the same text.
func TestValidUTF8MatchesAppendString(t *testing.T) {
	for _, in := range []string{"plain", "a\xff\xfe\xfdb", "\xc3", "é\x80x", ""} {
		var fromJSON string
		if err := json.Unmarshal(AppendString(nil, in), &fromJSON); err != nil {
			t.Fatalf("%q: AppendString wrote invalid JSON: %v", in, err)
		}
		if got := ValidUTF8(in); got != fromJSON {
			t.Errorf("ValidUTF8(%q) = %q, AppendString stores %q", in, got, fromJSON)
		}
	}
}

// AppendString writes what encoding/json writes (without its HTML escapes),
// byte for byte, for strings made of runs of plain text, escapes, control
// characters, invalid UTF-8 and U+2028 at every offset of the 8-byte blocks
// it skips at once.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	pieces := []string{"a", "plain text", "12345678", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "😀", "\xff", "\xc3", "\u2028", "\u2029", "<&>", "/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := sb.String()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want.String())
		}
	}
}
