package config

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// lookupEnv is os.LookupEnv; tests may replace it.
var lookupEnv = os.LookupEnv

// expandEnv replaces ${VAR} in every scalar value (not in keys) of the tree
// rooted at n. Expansion is per scalar and single-pass: the substituted text
// is never parsed as YAML, so values containing ':', '#', quotes or newlines
// stay one scalar. A plain (unquoted, untagged) scalar that changed is
// re-resolved, so `batch_rows: ${ROWS}` is an int and `x: ${EMPTY}` is null.
func (l *loader) expandEnv(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.expandEnv(path, c)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.expandEnv(fmt.Sprintf("%s[%d]", path, i), c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.expandEnv(join(path, n.Content[i].Value), n.Content[i+1])
		}
	case yaml.ScalarNode:
		v, err := expand(n.Value)
		if err != nil {
			l.errorf(path, n, "%v", err)
			return
		}
		if v != n.Value {
			n.Value = v
			if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				n.Tag = "" // resolve again from the new text
			}
		}
	}
	// Alias nodes are expanded where their anchor is defined.
}

// expand substitutes ${NAME} from the environment; $${ is a literal ${.
// Any other '$' is kept as is.
func expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in value; close it with } or write $${ for a literal ${")
			}
			name := s[i+2 : i+end]
			if !isEnvName(name) {
				return "", fmt.Errorf("invalid environment variable name %q in ${...}; use letters, digits and _, or write $${ for a literal ${", name)
			}
			v, ok := lookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set; set it (it may be empty) or write $${%s} for a literal ${%s}", name, name, name)
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
