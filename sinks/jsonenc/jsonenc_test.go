package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
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

// strconvFloat is AppendFloat without its few-decimals shortcut.
func strconvFloat(f float64) string {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

func checkFloat(t *testing.T, f float64) {
	t.Helper()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return
	}
	got, err := AppendFloat(nil, f)
	if err != nil {
		t.Fatalf("AppendFloat(%v): %v", f, err)
	}
	if want := strconvFloat(f); string(got) != want {
		t.Fatalf("AppendFloat(%b) = %s, strconv writes %s", f, got, want)
	}
}

// The few-decimals shortcut writes what strconv writes: for decimals of
// every length it takes, their neighbours one ulp away (which it must leave
// to strconv or write in full), values around its 2^49 limit and powers of
// two (where the round-trip interval is lopsided), and random bit patterns.
func TestAppendFloatMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 1e-6, 9.999999e-7, 1e15, 1 << 49, 1<<49 - 1, 1<<49 + 1,
		(1<<49 - 1) / 10.0, 5e-324, math.MaxFloat64, 0.1 + 0.2, 1e21, 123456789.123456, 9007199254740993} {
		checkFloat(t, f)
		checkFloat(t, -f)
		checkFloat(t, math.Nextafter(f, 0))
		checkFloat(t, math.Nextafter(f, math.Inf(1)))
	}
	for e := -1074; e < 1024; e++ {
		p := math.Ldexp(1, e)
		checkFloat(t, p)
		checkFloat(t, math.Nextafter(p, 0))
		checkFloat(t, math.Nextafter(p, math.Inf(1)))
	}
	for range 300_000 {
		d := rng.IntN(9)
		m := rng.Uint64N(1 << (1 + rng.IntN(56)))
		f := float64(m) / math.Pow10(d)
		if rng.IntN(2) == 0 {
			f = -f
		}
		checkFloat(t, f)
		checkFloat(t, math.Nextafter(f, 0))
		checkFloat(t, math.Nextafter(f, math.Inf(1)))
		checkFloat(t, math.Float64frombits(rng.Uint64()))
	}
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(1234.25)
	f.Add(0.1)
	f.Fuzz(func(t *testing.T, v float64) { checkFloat(t, v) })
}
