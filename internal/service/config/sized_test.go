package config

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The sized checks must accept exactly what the patterns in the JSON Schema
// accept: names at and around each bound, characters inside and outside each
// class, non-ASCII, and random strings near the bounds.
func TestSizedPatternsAcceptWhatTheirPatternsAccept(t *testing.T) {
	cases := []struct {
		name string
		re   sizedRE
	}{
		{"nameRE", nameRE},
		{"dynamoTableRE", dynamoTableRE},
		{"streamNameRE", streamNameRE},
		{"roleNameRE", roleNameRE},
	}
	alphabet := []string{"a", "Z", "0", "9", "_", "-", ".", "+", "=", ",", "@", ":", "/", " ", "é", "\n", "$", "\x00"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := regexp.MustCompile(c.re.String())
			check := func(s string) {
				t.Helper()
				if got, exp := c.re.MatchString(s), want.MatchString(s); got != exp {
					t.Fatalf("%s.MatchString(%q) = %v, the pattern %s says %v", c.name, s, got, c.re, exp)
				}
			}
			for _, n := range []int{0, 1, 2, 3, 4, c.re.min - 1, c.re.min, c.re.max - 1, c.re.max, c.re.max + 1, c.re.max + 10} {
				if n < 0 {
					continue
				}
				for _, ch := range alphabet {
					check(strings.Repeat(ch, n))
					if n > 0 {
						check("a" + strings.Repeat(ch, n-1))
						check(strings.Repeat("a", n-1) + ch)
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 20000 {
				n := rng.IntN(c.re.max + 3)
				var b strings.Builder
				for range n {
					if rng.IntN(8) == 0 {
						b.WriteString(alphabet[rng.IntN(len(alphabet))])
					} else {
						b.WriteString("abcXYZ019_-."[rng.IntN(12):][:1])
					}
				}
				check(b.String())
			}
		})
	}
}
