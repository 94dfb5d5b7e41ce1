// Package redact hides credentials in text that names where something is.
package redact

import "strings"

// URL returns s with the userinfo of its authority (user:password@) replaced
// by "xxxxx@", whether or not s parses as a URL: a URL that fails to parse
// is the one most likely to be echoed in an error, and a password with an
// unescaped '/', '?', '#' or '@' is what makes it fail. Everything up to the
// last '@' after the scheme is hidden, so a path holding '@' loses a part
// too: better than showing a password.
func URL(s string) string {
	scheme, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	return scheme + "xxxxx@" + rest[at+1:]
}
