package config

import (
	"fmt"
	"strings"
	"testing"
)

const bombBase = `sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
sinks:
  - name: out
    file: {path: out/orders}
dead_letter:
  file: {path: out/errors}
`

// mergeBomb is a chain of n merge keys, each merging the one before twice:
// 2^n mappings to walk from a few hundred bytes.
func mergeBomb(n int) string {
	var b strings.Builder
	b.WriteString(bombBase)
	b.WriteString("consumer:\n  <<: &m0 {application: orders-ingest}\n")
	b.WriteString("log:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  x%d: &m%d {<<: [*m%d, *m%d]}\n", i, i, i-1, i-1)
	}
	fmt.Fprintf(&b, "metrics: {<<: *m%d}\n", n)
	return b.String()
}

// fieldsBomb is a chain of n struct fields, each holding the one before
// twice: 2^n fields from a few hundred bytes.
func fieldsBomb(n int) string {
	var b strings.Builder
	b.WriteString(bombBase)
	b.WriteString("datasets:\n  - name: orders\n    source: orders\n    sink: out\n    fields:\n      - {name: ts, type: datetime}\n")
	b.WriteString("      - &f0 {name: a, type: int}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "      - &f%d {name: s%d, type: struct, fields: [*f%d, *f%d]}\n", i, i, i-1, i-1)
	}
	return b.String()
}

// TestAliasBombs: configs of a few hundred bytes whose aliases and merge
// keys stand for 2^30 nodes are refused with one short error once MaxNodes
// were walked, counted by the loader (before, a 1.4 KB chain of struct
// fields took minutes and a 203 MB error). validate runs on configs from
// pull requests: it must be safe on hostile input.
func TestAliasBombs(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"merge keys", mergeBomb(30)},
		{"struct fields", fieldsBomb(30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoader("")
			_, err := parseWith(l, []byte(tt.doc))
			want := fmt.Sprintf("the config expands to more than %d YAML nodes through aliases and merge keys", MaxNodes)
			if err == nil || !strings.Contains(err.Error(), want) || len(err.Error()) > 4096 {
				t.Fatalf("%d bytes of config: %.500v (%d bytes of error), want one error saying %q", len(tt.doc), err, len(fmt.Sprint(err)), want)
			}
			if l.visited > 2*MaxNodes+2 {
				t.Errorf("walked %d nodes, want at most %d", l.visited, 2*MaxNodes+2)
			}
		})
	}
	// The same shapes, shallow, are fine: anchors are a feature.
	for _, doc := range []string{mergeBomb(3), fieldsBomb(3)} {
		l := newLoader("")
		if _, err := parseWith(l, []byte(doc)); err != nil && strings.Contains(err.Error(), "YAML nodes") {
			t.Errorf("a shallow chain hit the bound: %v", err)
		}
	}
}
