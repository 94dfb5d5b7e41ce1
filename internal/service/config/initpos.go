package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind says where a consumer without a checkpoint starts reading a shard.
type Kind int

const (
	// Latest starts after the newest record (Kinesis LATEST). It is the default.
	Latest Kind = iota
	// TrimHorizon starts at the oldest retained record (Kinesis TRIM_HORIZON).
	TrimHorizon
	// AtTimestamp starts at the first record whose arrival time is at or after
	// InitPosition.Timestamp (Kinesis AT_TIMESTAMP).
	AtTimestamp
)

// String returns latest, trim_horizon or at_timestamp.
func (k Kind) String() string {
	switch k {
	case Latest:
		return "latest"
	case TrimHorizon:
		return "trim_horizon"
	case AtTimestamp:
		return "at_timestamp"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// InitPosition is a source's init_position: where reading starts in a shard
// that has no checkpoint yet. The zero value is Latest.
type InitPosition struct {
	Kind Kind
	// Timestamp is the arrival time to start at when Kind is AtTimestamp, in
	// UTC with at most microsecond precision. It is zero otherwise, and until
	// a Relative position is resolved.
	Timestamp time.Time
	// Relative (init_position: -72h) is an offset back from now, negative,
	// when Kind is AtTimestamp: the application's first start resolves it
	// once (Resolve) and stores the instant, so that a restart or a worker
	// joining later starts from the same instant, not from its own now.
	Relative time.Duration
}

// Resolve returns p with a Relative offset turned into the absolute instant
// now+Relative (in microseconds, as Kinesis takes it); other positions are
// returned as they are.
func (p InitPosition) Resolve(now time.Time) InitPosition {
	if p.Kind != AtTimestamp || p.Relative == 0 {
		return p
	}
	return InitPosition{Kind: AtTimestamp, Timestamp: now.Add(p.Relative).UTC().Truncate(time.Microsecond)}
}

// String returns "latest", "trim_horizon", the offset (-72h0m0s) of an
// unresolved relative position, or the timestamp in RFC 3339 form.
func (p InitPosition) String() string {
	if p.Kind == AtTimestamp && p.Relative != 0 {
		return p.Relative.String()
	}
	if p.Kind == AtTimestamp {
		return p.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return p.Kind.String()
}

// ShardIteratorType returns the Kinesis GetShardIterator type: LATEST,
// TRIM_HORIZON or AT_TIMESTAMP.
func (p InitPosition) ShardIteratorType() string {
	return strings.ToUpper(p.Kind.String())
}

// UnmarshalYAML decodes an init_position scalar; see Parse for the forms.
func (p *InitPosition) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseInitPosition(n)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

const initPositionForms = `latest, trim_horizon, a YAML timestamp, seconds since the epoch as an int (1714557600) or float with up to 6 decimals (1714557600.123456), or an ISO-8601 string like "2024-05-01", "2024-05-01T10:00:00" or "2024-05-01 10:00:00.123456+02:00", or a duration back from now (-72h, -30m, -7d)`

// Python's datetime range, which bounds what Fennel accepts.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// parseInitPosition interprets one YAML scalar the way Fennel interprets the
// init_position argument: "latest" / "trim_horizon" (any case), a datetime
// (YAML timestamp), an int of epoch seconds, a float of epoch
// {seconds}.{microseconds}, or a string for datetime.fromisoformat.
func parseInitPosition(n *yaml.Node) (InitPosition, error) {
	if n.Kind != yaml.ScalarNode {
		return InitPosition{}, fmt.Errorf("expected a scalar, got a %s; want %s", kindName(n), initPositionForms)
	}
	v := n.Value
	at := func(t time.Time) (InitPosition, error) {
		t = t.UTC()
		if t.Before(minTime) || t.After(maxTime) {
			return InitPosition{}, fmt.Errorf("%q is out of range: year %d is outside 1..9999", v, t.Year())
		}
		return InitPosition{Kind: AtTimestamp, Timestamp: t}, nil
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		switch strings.ToLower(v) {
		case "latest":
			return InitPosition{Kind: Latest}, nil
		case "trim_horizon":
			return InitPosition{Kind: TrimHorizon}, nil
		}
		if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
			return parseRelative(v)
		}
		t, err := parseISO(v)
		if err != nil {
			hint := ""
			if _, e := strconv.ParseFloat(strings.TrimSpace(v), 64); e == nil {
				hint = "; write epoch seconds unquoted so they are a number"
			}
			return InitPosition{}, fmt.Errorf("%q is not a valid init_position: %v%s; want %s", v, err, hint, initPositionForms)
		}
		return at(t)
	case "!!timestamp":
		// A YAML timestamp is Fennel's "datetime object" form. Prefer the
		// ISO-8601 reading; YAML also allows e.g. 2024-5-1 and t as separator.
		t, isoErr := parseISO(v)
		if isoErr == nil {
			return at(t)
		}
		if err := n.Decode(&t); err != nil {
			return InitPosition{}, fmt.Errorf("%q is not a valid init_position: %v; want %s", v, isoErr, initPositionForms)
		}
		if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
			return InitPosition{}, fmt.Errorf("%q is not a valid init_position: %v", v, isoErr)
		}
		if t.Nanosecond()%1000 != 0 {
			return InitPosition{}, fmt.Errorf("%q is more precise than microseconds; use at most 6 fractional digits", v)
		}
		return at(t)
	case "!!int":
		s := strings.ReplaceAll(v, "_", "")
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return InitPosition{}, fmt.Errorf("%q is not a decimal number of seconds since the epoch", v)
		}
		if sec > maxTime.Unix() {
			return InitPosition{}, fmt.Errorf("%q is out of range (after year 9999); init_position takes seconds, not milliseconds, since the epoch", v)
		}
		if sec < minTime.Unix() {
			return InitPosition{}, fmt.Errorf("%q is out of range (before year 1)", v)
		}
		return at(time.Unix(sec, 0))
	case "!!float":
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			return InitPosition{}, fmt.Errorf("%q is not a finite number of seconds since the epoch", v)
		}
		micros := new(big.Rat).Mul(r, big.NewRat(1_000_000, 1))
		if !micros.IsInt() {
			return InitPosition{}, fmt.Errorf("%q is more precise than microseconds; use at most 6 decimals", v)
		}
		sec, us := new(big.Int).DivMod(micros.Num(), big.NewInt(1_000_000), new(big.Int))
		if !sec.IsInt64() || sec.Int64() > maxTime.Unix() {
			return InitPosition{}, fmt.Errorf("%q is out of range (after year 9999); init_position takes seconds, not milliseconds, since the epoch", v)
		}
		if sec.Int64() < minTime.Unix() {
			return InitPosition{}, fmt.Errorf("%q is out of range (before year 1)", v)
		}
		return at(time.Unix(sec.Int64(), us.Int64()*1000))
	case "!!null":
		return InitPosition{}, fmt.Errorf("is empty; want %s", initPositionForms)
	default:
		return InitPosition{}, fmt.Errorf("%q (%s) is not a valid init_position; want %s", v, tag, initPositionForms)
	}
}

// maxRelative is the longest Kinesis retention (365 days): an offset further
// back reads from the oldest record, which trim_horizon says plainly.
const maxRelative = 365 * 24 * time.Hour

// parseRelative parses a negative offset from now: a Go duration (-72h,
// -1h30m) or a number of days (-7d).
func parseRelative(v string) (InitPosition, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 64)
		if err == nil && (n < -366 || n > 366) {
			return InitPosition{}, fmt.Errorf("%q is more than 365 days back, beyond the longest Kinesis retention; use trim_horizon", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	switch {
	case err != nil:
		return InitPosition{}, fmt.Errorf("%q is not a valid init_position: not a duration (write e.g. -72h, -30m or -7d); want %s", v, initPositionForms)
	case d >= 0:
		return InitPosition{}, fmt.Errorf("%q is not in the past; a relative init_position goes back from now, so write it negative (e.g. -%s)", v, strings.TrimPrefix(v, "+"))
	case d < -maxRelative:
		return InitPosition{}, fmt.Errorf("%q is more than 365 days back, beyond the longest Kinesis retention; use trim_horizon", v)
	}
	return InitPosition{Kind: AtTimestamp, Relative: d}, nil
}

// parseISO parses what Python's datetime.fromisoformat accepts in extended
// form: YYYY-MM-DD, optionally followed by 'T' or ' ' and HH, HH:MM,
// HH:MM:SS or HH:MM:SS.ffffff (1-6 digits, '.' or ','), optionally followed
// by 'Z' or ±HH:MM. A missing offset means UTC.
func parseISO(s string) (time.Time, error) {
	p := isoParser{s: s}
	year := p.digits(4, "a 4-digit year")
	p.expect('-', "'-' after the year")
	month := p.digits(2, "a 2-digit month")
	p.expect('-', "'-' after the month")
	day := p.digits(2, "a 2-digit day")
	var hour, min, sec, usec int
	offset := 0
	if p.err == nil && p.i < len(s) {
		if c := s[p.i]; c != 'T' && c != ' ' {
			return time.Time{}, fmt.Errorf("expected 'T' or ' ' between date and time at %q", s[p.i:])
		}
		p.i++
		hour = p.digits(2, "a 2-digit hour")
		if p.more(':') {
			p.i++
			min = p.digits(2, "2-digit minutes")
			if p.more(':') {
				p.i++
				sec = p.digits(2, "2-digit seconds")
				if p.more('.') || p.more(',') {
					p.i++
					start := p.i
					for p.i < len(s) && s[p.i] >= '0' && s[p.i] <= '9' {
						p.i++
					}
					frac := s[start:p.i]
					switch {
					case p.err != nil:
					case len(frac) == 0:
						p.fail("digits after the decimal point")
					case len(frac) > 6:
						return time.Time{}, fmt.Errorf("fraction %q has more than 6 digits (microseconds)", frac)
					default:
						usec, _ = strconv.Atoi(frac + strings.Repeat("0", 6-len(frac)))
					}
				}
			}
		}
		if p.err == nil && p.i < len(s) {
			switch s[p.i] {
			case 'Z':
				p.i++
			case '+', '-':
				sign := 1
				if s[p.i] == '-' {
					sign = -1
				}
				p.i++
				oh := p.digits(2, "a 2-digit offset hour")
				p.expect(':', "':' in the UTC offset (±HH:MM)")
				om := p.digits(2, "2-digit offset minutes")
				if p.err == nil && (oh > 23 || om > 59) {
					return time.Time{}, fmt.Errorf("UTC offset %q is out of range", s[len(s)-6:])
				}
				offset = sign * (oh*3600 + om*60)
			default:
				p.fail("'Z' or a ±HH:MM UTC offset")
			}
		}
	}
	if p.err == nil && p.i < len(s) {
		p.fail("end of text")
	}
	if p.err != nil {
		return time.Time{}, p.err
	}
	if month < 1 || month > 12 {
		return time.Time{}, fmt.Errorf("month %02d is out of range", month)
	}
	if year < 1 {
		return time.Time{}, fmt.Errorf("year %04d is out of range", year)
	}
	if day < 1 || day > daysIn(year, month) {
		return time.Time{}, fmt.Errorf("day %02d is out of range for %04d-%02d", day, year, month)
	}
	if hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("time %02d:%02d:%02d is out of range", hour, min, sec)
	}
	loc := time.UTC
	if offset != 0 {
		loc = time.FixedZone("", offset)
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, usec*1000, loc).UTC(), nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

type isoParser struct {
	s   string
	i   int
	err error
}

func (p *isoParser) fail(want string) {
	if p.err != nil {
		return
	}
	if p.i >= len(p.s) {
		p.err = fmt.Errorf("expected %s at end of text", want)
	} else {
		p.err = fmt.Errorf("expected %s at %q", want, p.s[p.i:])
	}
}

func (p *isoParser) more(c byte) bool { return p.err == nil && p.i < len(p.s) && p.s[p.i] == c }

func (p *isoParser) expect(c byte, want string) {
	if p.more(c) {
		p.i++
		return
	}
	p.fail(want)
}

func (p *isoParser) digits(n int, want string) int {
	if p.err != nil {
		return 0
	}
	v := 0
	for k := 0; k < n; k++ {
		if p.i+k >= len(p.s) || p.s[p.i+k] < '0' || p.s[p.i+k] > '9' {
			p.fail(want)
			return 0
		}
		v = v*10 + int(p.s[p.i+k]-'0')
	}
	p.i += n
	return v
}

// ParsePosition reads a position given outside the YAML file (a command-line
// flag) in every form init_position takes: the text is read as a YAML scalar,
// so 1714557600 is epoch seconds and 2024-05-01T10:00:00Z a timestamp.
func ParsePosition(s string) (InitPosition, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil || len(doc.Content) == 0 {
		return InitPosition{}, fmt.Errorf("%q is not a position; want %s", s, initPositionForms)
	}
	return parseInitPosition(doc.Content[0])
}
