package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// fennelUnits are the units of Fennel's duration strings, in seconds.
var fennelUnits = map[byte]float64{
	'y': 365 * 24 * 3600, 'w': 7 * 24 * 3600, 'd': 24 * 3600, 'h': 3600, 'm': 60, 's': 1,
}

// ParseFennelDuration reads a duration as Fennel writes them: numbers, each
// followed by a unit y (365 days), w, d, h, m or s, optionally separated by
// spaces ("14d", "1h 30m", "1.5h"). A bare number is refused, as Fennel does:
// its unit would be a guess.
func ParseFennelDuration(s string) (time.Duration, error) {
	const form = "write numbers with a unit y, w, d, h, m or s, e.g. 14d or \"1h 30m\""
	var total float64
	num := ""
	parts := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
		case c == ' ':
			if num != "" {
				return 0, fmt.Errorf("%q is not a duration: %s has no unit; %s", s, num, form)
			}
		default:
			unit, ok := fennelUnits[c]
			if !ok {
				return 0, fmt.Errorf("%q is not a duration: unknown unit %q; %s", s, string(c), form)
			}
			if num == "" {
				return 0, fmt.Errorf("%q is not a duration: unit %q without a number; %s", s, string(c), form)
			}
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration: %q is not a number; %s", s, num, form)
			}
			total += v * unit
			num = ""
			parts++
		}
	}
	if num != "" || parts == 0 {
		return 0, fmt.Errorf("%q is not a duration: %s", strings.TrimSpace(s), form)
	}
	if total*1e9 > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long a duration: at most about 292y", s)
	}
	return time.Duration(total * float64(time.Second)), nil
}
