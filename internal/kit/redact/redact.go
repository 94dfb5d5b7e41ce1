// Package redact is the one place credentials are masked: in a URL, in a
// PostgreSQL connection string, and wherever a known secret may be quoted
// (a driver's or a server's error). Everything it hides becomes Mask, so a
// reader of a log line, an error, a dead letter or the printed config sees
// one mark for "a secret was here". It depends on nothing of ours, so that
// every stage and sink may use it.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every secret this package hides.
const Mask = "*****"

// URL returns s with its credentials masked, whether or not s parses as a
// URL: a URL that fails to parse is the one most likely to be echoed in an
// error, and a password with an unescaped '/', '?', '#' or '@' is what makes
// it fail.
//
//   - The userinfo (everything up to the last '@' after the scheme) is
//     masked whole, user name included: a user alone may be a token, and
//     an API key's id is half a credential. A path holding '@' loses a
//     part too: better than showing a password.
//   - The values of query parameters named like a credential (secretName)
//     are masked: ?api_key=*****&region=eu. The rest is left as written.
func URL(s string) string {
	scheme, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = Mask + "@" + rest[at+1:]
	}
	return scheme + maskQuery(rest)
}

// maskQuery masks the credential values of the query of s, if it has one.
func maskQuery(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, frag := s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	params := strings.Split(query, "&")
	changed := false
	for i, p := range params {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secretName(name) {
			params[i], changed = k+"="+Mask, true
		}
	}
	if !changed {
		return s
	}
	return s[:q+1] + strings.Join(params, "&") + frag
}

// secretName reports whether a parameter's name (of a URL's query or a
// connection string) says it holds a credential: ?token=, ?api_key=,
// password=, sslpassword=...
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "token", "secret", "key", "auth", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// DSN returns a PostgreSQL connection string, a URL (postgres://) or
// key=value pairs, with its credentials masked as URL and secretName say.
// A DSN it cannot read is masked whole: it may hold a password in a form
// this function does not know.
func DSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if _, err := url.Parse(dsn); err != nil {
			return Mask
		}
		return URL(dsn)
	}
	out, ok := maskKeyValue(dsn)
	if !ok {
		return Mask
	}
	return out
}

// maskKeyValue masks the secret values of a key=value connection string
// (libpq's format: values may be single-quoted with \\ and \' escapes).
func maskKeyValue(s string) (string, bool) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			b.WriteByte(' ')
			i++
		}
		if i == len(s) {
			break
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return "", false
		}
		k := strings.TrimSpace(s[i : i+eq])
		b.WriteString(s[i : i+eq+1])
		i += eq + 1
		for i < len(s) && s[i] == ' ' {
			b.WriteByte(' ')
			i++
		}
		start := i
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(s) {
				return "", false
			}
			i++
		} else {
			for i < len(s) && s[i] != ' ' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s))
		}
		if secretName(k) {
			b.WriteString(Mask)
		} else {
			b.WriteString(s[start:i])
		}
	}
	return b.String(), true
}

// Secrets returns s with every occurrence of each secret masked, as written
// and in its URL-escaped forms (a driver may quote the DSN it was given).
// Empty secrets are ignored.
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, form := range [...]string{sec, url.QueryEscape(sec), url.PathEscape(sec)} {
			s = strings.ReplaceAll(s, form, Mask)
		}
	}
	return s
}
