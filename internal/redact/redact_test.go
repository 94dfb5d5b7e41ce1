package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://registry:8081", "https://registry:8081"},
		{"https://u:s3cret@registry:8081/x", "https://xxxxx@registry:8081/x"},
		{"https://u@registry", "https://xxxxx@registry"},
		{"https://u:s3c/ret@registry", "https://xxxxx@registry"},
		{"https://u:s3c@r#et@registry/p", "https://xxxxx@registry/p"},
		{"http://u:pa%zz@reg/", "http://xxxxx@reg/"},
		{"u:s3cret@registry:8081", "xxxxx@registry:8081"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want || strings.Contains(got, "s3c") {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
