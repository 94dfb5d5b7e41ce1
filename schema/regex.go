package schema

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// runeSeq matches the strings of a regex that is a fixed sequence of single
// runes, each a literal or a character class: `[A-Z]{2}`, `SKU-[0-9]{6}`,
// `[a-f0-9]{8}`. Such restrictions (country codes, fixed-format ids) are
// common, and the regexp package's general matcher took several times the
// time of the rest of the field's conversion for them.
type runeSeq [][]rune // per position: the class's ranges, lo-hi pairs

// compileRuneSeq returns the matcher for src, or nil when src is anything
// else (the regexp package then matches it).
func compileRuneSeq(src string) runeSeq {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil
	}
	seq, ok := appendRunes(nil, re.Simplify())
	if !ok {
		return nil
	}
	if len(seq) == 0 || len(seq) > 64 {
		return nil
	}
	return seq
}

func appendRunes(seq runeSeq, re *syntax.Regexp) (runeSeq, bool) {
	switch {
	case re.Op == syntax.OpConcat:
		for _, sub := range re.Sub {
			var ok bool
			if seq, ok = appendRunes(seq, sub); !ok {
				return nil, false
			}
		}
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		for _, r := range re.Rune {
			seq = append(seq, []rune{r, r})
		}
	case re.Op == syntax.OpCharClass:
		seq = append(seq, re.Rune)
	case re.Op == syntax.OpAnyCharNotNL:
		seq = append(seq, []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
	case re.Op == syntax.OpAnyChar:
		seq = append(seq, []rune{0, unicode.MaxRune})
	default:
		return nil, false
	}
	return seq, true
}

// match reports whether s is the sequence, as regexp's MatchString of the
// anchored pattern does: invalid UTF-8 bytes are read as U+FFFD, one each.
func (q runeSeq) match(s string) bool {
	if len(s) < len(q) || len(s) > len(q)*utf8.UTFMax {
		return false
	}
	i := 0
	for _, class := range q {
		if i >= len(s) {
			return false
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		in := false
		for k := 0; k+1 < len(class); k += 2 {
			if r >= class[k] && r <= class[k+1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return i == len(s)
}
