package schema

import (
	"time"
)

// Epoch unit thresholds: an epoch integer v is read in the coarsest unit in which
// it is a time inside the int64-nanosecond range (1677-09-21 .. 2262-04-11),
// the same cascade as Fennel's client (seconds, then ms, then µs, then ns).
const (
	maxEpochSeconds = 9_223_372_036
	maxEpochMillis  = 9_223_372_036_854
	maxEpochMicros  = 9_223_372_036_854_775
)

var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// epochMicros converts an epoch integer of detected unit to microseconds.
func epochMicros(v int64) int64 {
	switch {
	case v >= -maxEpochSeconds && v <= maxEpochSeconds:
		return v * 1_000_000
	case v >= -maxEpochMillis && v <= maxEpochMillis:
		return v * 1_000
	case v >= -maxEpochMicros && v <= maxEpochMicros:
		return v
	}
	q := v / 1000 // nanoseconds: floor to µs
	if v%1000 < 0 {
		q--
	}
	return q
}

// decEpochMicros converts an epoch number with a fraction or exponent. The unit
// is detected from the integer part; digits below a microsecond are floored.
func decEpochMicros(n *decNum) (int64, string) {
	id := n.intDigits()
	if id > 19 {
		return 0, "epoch outside int64 range"
	}
	var ip uint64
	for i := 0; i < id; i++ {
		ip = ip*10 + uint64(n.intDigit(i)-'0')
	}
	if ip > 1<<63-1 {
		return 0, "epoch outside int64 range"
	}
	var micros uint64
	var keep int // fraction digits that are still ≥ 1µs
	switch {
	case ip <= maxEpochSeconds:
		micros, keep = ip*1_000_000, 6
	case ip <= maxEpochMillis:
		micros, keep = ip*1_000, 3
	case ip <= maxEpochMicros:
		micros, keep = ip, 0
	default:
		micros, keep = ip/1000, -1
	}
	var m uint64
	for j := 0; j < keep; j++ {
		m = m*10 + uint64(n.fracDigit(j)-'0')
	}
	micros += m
	rest := false // anything below a microsecond?
	if keep < 0 {
		rest = ip%1000 != 0 || n.fracDigits() > 0
	} else {
		rest = n.fracDigits() > keep
	}
	v := int64(micros)
	if n.neg {
		v = -v
		if rest {
			v--
		}
	}
	return v, ""
}

func inTimeRange(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

// isNumericString reports whether s looks like a number (epoch) rather than a
// date: it starts with a digit or '-' and has no '-' or ':' after the start.
func isNumericString(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return false
	}
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' && (s[i-1] == 'e' || s[i-1] == 'E')) {
			return false
		}
	}
	return true
}

func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for k := i; k < i+n; k++ {
		c := s[k]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseYMD reads YYYY-MM-DD at the start of s.
func parseYMD(s string) (y, m, d int, ok bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return
	}
	var ok1, ok2, ok3 bool
	y, ok1 = digits(s, 0, 4)
	m, ok2 = digits(s, 5, 2)
	d, ok3 = digits(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// parseISO reads an RFC 3339 / ISO-8601 timestamp:
// YYYY-MM-DD[(T|t| )hh:mm[:ss[.f…]][Z|z|±hh:mm|±hhmm|±hh]]. A date alone is
// midnight UTC; no offset means UTC. Digits below a microsecond are dropped.
func parseISO(s string) (time.Time, bool) {
	y, mo, d, ok := parseYMD(s)
	if !ok {
		return time.Time{}, false
	}
	if len(s) == 10 {
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC), true
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, false
	}
	i := 11
	h, ok1 := digits(s, i, 2)
	if !ok1 || i+2 >= len(s) || s[i+2] != ':' {
		return time.Time{}, false
	}
	mi, ok2 := digits(s, i+3, 2)
	if !ok2 || h > 23 || mi > 59 {
		return time.Time{}, false
	}
	i += 5
	sec, micro := 0, 0
	if i < len(s) && s[i] == ':' {
		var ok3 bool
		sec, ok3 = digits(s, i+1, 2)
		if !ok3 || sec > 59 {
			return time.Time{}, false
		}
		i += 3
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			st := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				if i-st < 6 {
					micro = micro*10 + int(s[i]-'0')
				}
				i++
			}
			n := i - st
			if n == 0 {
				return time.Time{}, false
			}
			for ; n < 6; n++ {
				micro *= 10
			}
		}
	}
	off := 0
	if i < len(s) {
		switch c := s[i]; c {
		case 'Z', 'z':
			i++
		case '+', '-':
			oh, okh := digits(s, i+1, 2)
			if !okh {
				return time.Time{}, false
			}
			i += 3
			om := 0
			if i < len(s) {
				if s[i] == ':' {
					i++
				}
				var okm bool
				om, okm = digits(s, i, 2)
				if !okm {
					return time.Time{}, false
				}
				i += 2
			}
			if oh > 23 || om > 59 {
				return time.Time{}, false
			}
			off = (oh*60 + om) * 60
			if c == '-' {
				off = -off
			}
		default:
			return time.Time{}, false
		}
	}
	if i != len(s) {
		return time.Time{}, false
	}
	// The fields are in range (checked above), so the instant is plain
	// arithmetic; time.Date normalizes and was half of this function's cost.
	// time.Unix(…).UTC() is the same Time as time.Date(…, time.UTC).
	unix := daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+sec-off)
	return time.Unix(unix, int64(micro)*1000).UTC(), true
}

// daysFromCivil is the number of days from 1970-01-01 to the proleptic
// Gregorian date y-m-d (m 1..12, d valid for it), by Howard Hinnant's
// civil-to-days method: 400-year eras of 146097 days, each year starting on
// 1 March so that the leap day ends it.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400 // [0, 399]
	mp := (m + 9) % 12 // March 0 .. February 11
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return int64(era)*146097 + int64(doe) - 719468
}

var monthNames = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func lower3(s string) (string, bool) {
	if len(s) != 3 {
		return "", false
	}
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c < 'a' || c > 'z' {
			return "", false
		}
		b[i] = c
	}
	return string(b[:]), true
}

// rfc2822Zones are the named zones of RFC 2822 §4.3. Any other alphabetic zone
// (JST, CET, military letters) means -0000, "unknown", which is read as UTC.
var rfc2822Zones = map[string]int{
	"UT": 0, "GMT": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}

// fields splits s on runs of spaces and tabs into at most len(out) words.
func fields(s string, out []string) int {
	n := 0
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			break
		}
		st := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		if n == len(out) {
			return n + 1
		}
		out[n] = s[st:i]
		n++
	}
	return n
}

// parseRFC2822 reads [Day,] D Mon YYYY hh:mm[:ss] zone, zone being ±hhmm or a
// name. A 2-digit year is 19xx when >= 50 else 20xx, a 3-digit one 1900+y (RFC
// 2822 §4.3). A given day name must match the date.
func parseRFC2822(s string) (time.Time, bool) {
	wday := ""
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			wday = trimBlank(s[:i])
			s = s[i+1:]
			break
		}
	}
	var w [6]string
	n := fields(s, w[:])
	if n != 5 {
		return time.Time{}, false
	}
	day, ok := 0, false
	switch len(w[0]) {
	case 1:
		day, ok = digits(w[0], 0, 1)
	case 2:
		day, ok = digits(w[0], 0, 2)
	}
	if !ok {
		return time.Time{}, false
	}
	mon, ok := lower3(w[1])
	if !ok {
		return time.Time{}, false
	}
	m := 0
	for k, name := range monthNames {
		if name == mon {
			m = k + 1
		}
	}
	if m == 0 {
		return time.Time{}, false
	}
	y, ok := digits(w[2], 0, len(w[2]))
	if !ok || len(w[2]) < 2 || len(w[2]) > 4 {
		return time.Time{}, false
	}
	switch len(w[2]) {
	case 2:
		if y < 50 {
			y += 2000
		} else {
			y += 1900
		}
	case 3:
		y += 1900
	}
	if day < 1 || day > daysIn(m, y) {
		return time.Time{}, false
	}
	tm := w[3]
	if len(tm) != 5 && len(tm) != 8 || tm[2] != ':' || len(tm) == 8 && tm[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(tm, 0, 2)
	mi, ok2 := digits(tm, 3, 2)
	sec, ok3 := 0, true
	if len(tm) == 8 {
		sec, ok3 = digits(tm, 6, 2)
	}
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 { // leap second: RFC 2822 allows it; time.Time has no room for it
		sec = 59
	}
	z := w[4]
	off := 0
	switch {
	case len(z) == 5 && (z[0] == '+' || z[0] == '-'):
		zh, okh := digits(z, 1, 2)
		zm, okm := digits(z, 3, 2)
		if !okh || !okm || zm > 59 {
			return time.Time{}, false
		}
		off = (zh*60 + zm) * 60
		if z[0] == '-' {
			off = -off
		}
	case len(z) >= 1 && len(z) <= 5 && isAlpha(z):
		if hrs, known := rfc2822Zones[upper(z)]; known {
			off = hrs * 3600
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), day, h, mi, sec, 0, time.UTC)
	if wday != "" {
		wd, ok := lower3(wday)
		if !ok || dayNames[t.Weekday()] != wd {
			return time.Time{}, false
		}
	}
	return t.Add(-time.Duration(off) * time.Second), true
}

func trimBlank(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
