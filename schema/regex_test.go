package schema

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The fixed-sequence matcher agrees with the regexp package on the patterns
// it takes, and declines the others.
func TestRuneSeqAgreesWithRegexp(t *testing.T) {
	takes := []string{`[A-Z]{2}`, `SKU-[0-9]{6}`, `[a-f0-9]{8}`, `a`, `abc`, `[^a-z]x`, `é[à-ü]`, `\d\d`, `[\x{FFFD}a]b`, `.{2}`, `a|b`, `(?s).`}
	declines := []string{`[a-z ]*`, `(?i)ab`, `a+`, `x?`, `^a$`, `[A-Z]{2,3}`, `(ab)`, ``}
	for _, src := range declines {
		if compileRuneSeq(src) != nil {
			t.Errorf("%s: compiled, want the regexp package", src)
		}
	}
	alphabet := []string{"A", "Z", "a", "z", "0", "9", "-", "S", "K", "U", "é", "ü", "x", "b", "c", "\xff", "\n", "日", " "}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, src := range takes {
		q := compileRuneSeq(src)
		if q == nil {
			t.Errorf("%s: not compiled", src)
			continue
		}
		re := regexp.MustCompile(`^(?:` + src + `)$`)
		matched := 0
		for range 20000 {
			s := ""
			for range rng.IntN(len(q) + 3) {
				s += alphabet[rng.IntN(len(alphabet))]
			}
			if rng.IntN(4) == 0 { // near misses of a matching string
				s = sample(src)
			}
			if got, want := q.match(s), re.MatchString(s); got != want {
				t.Fatalf("%s on %q: %v, regexp says %v", src, s, got, want)
			} else if got {
				matched++
			}
		}
		if matched == 0 {
			t.Errorf("%s: no generated string matched; the comparison proves little", src)
		}
	}
}

// sample returns a string that matches src for the patterns above.
func sample(src string) string {
	return map[string]string{`[A-Z]{2}`: "DE", `SKU-[0-9]{6}`: "SKU-012345", `[a-f0-9]{8}`: "deadbeef", `a`: "a", `abc`: "abc",
		`[^a-z]x`: "Zx", `é[à-ü]`: "éü", `\d\d`: "42", `[\x{FFFD}a]b`: "\xffb", `.{2}`: "日x", `a|b`: "b", `(?s).`: "\n"}[src]
}
