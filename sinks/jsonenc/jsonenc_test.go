package jsonenc

import (
	"encoding/json"
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
