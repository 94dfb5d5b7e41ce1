package schema

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
)

// decNum is an exactly parsed decimal literal (JSON number grammar, leading
// zeros allowed): the value is ±0.D × 10^point where D is the digit string
// sig(0..nsig-1), with no leading or trailing zeros. nsig == 0 means zero.
// It points into the literal and never allocates.
type decNum struct {
	neg   bool
	ip    string // digits before the point, as written
	fp    string // digits after the point, as written
	lo    int    // index of the first significant digit in ip+fp
	nsig  int
	point int
}

// at returns digit i of the virtual string ip+fp.
func (n *decNum) at(i int) byte {
	if i < len(n.ip) {
		return n.ip[i]
	}
	return n.fp[i-len(n.ip)]
}

// sig returns significant digit k (0 <= k < nsig).
func (n *decNum) sig(k int) byte { return n.at(n.lo + k) }

// intDigits is how many digits the integer part has (0 for |v| < 1).
func (n *decNum) intDigits() int {
	if n.nsig == 0 || n.point < 0 {
		return 0
	}
	return n.point
}

// fracDigits is how many digits after the point the value needs.
func (n *decNum) fracDigits() int {
	if d := n.nsig - n.point; d > 0 {
		return d
	}
	return 0
}

// intDigit returns digit i (0 = most significant) of the integer part.
func (n *decNum) intDigit(i int) byte {
	if i < n.nsig {
		return n.sig(i)
	}
	return '0'
}

// fracDigit returns digit j (0 = tenths) after the point.
func (n *decNum) fracDigit(j int) byte {
	k := n.point + j
	if k >= 0 && k < n.nsig {
		return n.sig(k)
	}
	return '0'
}

const expLimit = 1 << 30

// parseDec parses a decimal literal: -?digits[.digits][(e|E)[+-]digits].
func parseDec(s string) (decNum, bool) {
	var n decNum
	i := 0
	if i < len(s) && s[i] == '-' {
		n.neg = true
		i++
	}
	st := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n.ip = s[st:i]
	if n.ip == "" {
		return n, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		st = i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n.fp = s[st:i]
		if n.fp == "" {
			return n, false
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		st = i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp < expLimit {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == st {
			return n, false
		}
		if exp > expLimit {
			exp = expLimit
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return n, false
	}
	total := len(n.ip) + len(n.fp)
	lo := 0
	for lo < total && n.at(lo) == '0' {
		lo++
	}
	if lo == total {
		n.neg = false // -0 is 0
		return n, true
	}
	hi := total - 1
	for n.at(hi) == '0' {
		hi--
	}
	n.lo = lo
	n.nsig = hi - lo + 1
	n.point = len(n.ip) + exp - lo
	return n, true
}

// smallInt parses -?[0-9]{1,18}: no overflow possible, no allocation.
func smallInt(s string) (int64, bool) {
	i := 0
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg = true
		i = 1
	}
	if len(s)-i == 0 || len(s)-i > 18 {
		return 0, false
	}
	var v int64
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// decToInt64 returns the integer value of n, with a reason when it has none.
func decToInt64(n *decNum) (int64, string) {
	if n.nsig == 0 {
		return 0, ""
	}
	if n.fracDigits() > 0 {
		return 0, "not a whole number"
	}
	d := n.intDigits()
	if d > 19 {
		return 0, "outside int64 range"
	}
	var u uint64
	for i := 0; i < d; i++ {
		c := uint64(n.intDigit(i) - '0')
		if u > (math.MaxUint64-c)/10 {
			return 0, "outside int64 range"
		}
		u = u*10 + c
	}
	if n.neg {
		if u > 1<<63 {
			return 0, "outside int64 range"
		}
		return int64(-u), "" // -(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, "outside int64 range"
	}
	return int64(u), ""
}

// floatToInt64 accepts a float that is a whole number within int64.
func floatToInt64(f float64) (int64, string) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, "not finite"
	}
	if f != math.Trunc(f) {
		return 0, "not a whole number"
	}
	if f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
		return 0, "outside int64 range"
	}
	return int64(f), ""
}

// formatDecimal writes n with exactly scale digits after the point, or says
// why it cannot.
func formatDecimal(n *decNum, scale int) (string, string) {
	if n.fracDigits() > scale {
		return "", "needs " + strconv.Itoa(n.fracDigits()) + " digits after the point, decimal[" + strconv.Itoa(scale) + "] has " + strconv.Itoa(scale)
	}
	id := n.intDigits()
	if id+scale > maxDecimalDigits {
		return "", "outside decimal[" + strconv.Itoa(scale) + "] range (at most " + strconv.Itoa(maxDecimalDigits-scale) + " digits before the point)"
	}
	var buf [2 + maxDecimalDigits + 1]byte
	b := buf[:0]
	if n.neg {
		b = append(b, '-')
	}
	if id == 0 {
		b = append(b, '0')
	}
	for i := 0; i < id; i++ {
		b = append(b, n.intDigit(i))
	}
	b = append(b, '.')
	for j := 0; j < scale; j++ {
		b = append(b, n.fracDigit(j))
	}
	return string(b), ""
}

var bigTen = big.NewInt(10)

// Bit lengths beyond which a rational cannot be a decimal[scale] value, for
// any scale: the value is num/denom in lowest terms, exact with at most
// maxDecimalDigits digits in all, so denom divides 10^maxDecimalDigits and
// |num| < 10^maxDecimalDigits·denom. Checked before any arithmetic: goavro
// gives a bytes decimal of a megabyte as a megabyte-long big.Rat, whose
// conversions to text take seconds.
var (
	maxDecimalDenomBits = new(big.Int).Exp(bigTen, big.NewInt(maxDecimalDigits), nil).BitLen()
	maxDecimalNumBits   = 2 * maxDecimalDenomBits
)

// ratToDecimal formats an exact rational (goavro's decimal) with scale digits
// after the point, if that is exact.
func ratToDecimal(r *big.Rat, scale int) (string, string) {
	switch {
	case r.Denom().BitLen() > maxDecimalDenomBits:
		return "", "needs more than " + strconv.Itoa(scale) + " digits after the point"
	case r.Num().BitLen() > maxDecimalNumBits:
		return "", "outside decimal[" + strconv.Itoa(scale) + "] range (at most " + strconv.Itoa(maxDecimalDigits-scale) + " digits before the point)"
	}
	m := new(big.Int).Exp(bigTen, big.NewInt(int64(scale)), nil)
	num := new(big.Int).Mul(r.Num(), m)
	q, rem := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if rem.Sign() != 0 {
		return "", "needs more than " + strconv.Itoa(scale) + " digits after the point"
	}
	s := q.String() // unscaled integer, with sign
	n, ok := parseDec(s)
	if !ok {
		return "", "not a decimal"
	}
	n.point -= scale
	return formatDecimal(&n, scale)
}

// asInt64 reads an integer config value (YAML gives int; code may give any
// integer type or json.Number).
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case json.Number:
		n, ok := parseDec(string(x))
		if !ok {
			return 0, false
		}
		i, why := decToInt64(&n)
		return i, why == ""
	}
	return 0, false
}

// asFloat64 reads a numeric config value.
func asFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return float64(x), !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	if i, ok := asInt64(v); ok {
		return float64(i), true
	}
	return 0, false
}
