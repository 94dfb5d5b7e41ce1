package config

import "regexp"

// sizedRE accepts what its pattern accepts, a pattern whose repetition is
// bounded ({1,128}), but checks the bounds as a length and runs the pattern
// with the repetition unbounded. Go's regexp compiles {m,n} into n copies of
// the class: the four name patterns cost 0.5 MB of live heap and about 1 ms
// at every start of every command. Every class they repeat is ASCII, so
// bytes and characters count the same.
type sizedRE struct {
	pattern  string // the documented pattern, as the JSON Schema gives it
	min, max int
	re       *regexp.Regexp
}

// sized returns pattern's sizedRE: unbounded is pattern with its bounded
// repetition made unbounded, and the whole string is min to max bytes long.
func sized(pattern, unbounded string, min, max int) sizedRE {
	return sizedRE{pattern: pattern, min: min, max: max, re: regexp.MustCompile(unbounded)}
}

func (s sizedRE) MatchString(v string) bool {
	return len(v) >= s.min && len(v) <= s.max && s.re.MatchString(v)
}

func (s sizedRE) String() string { return s.pattern }
