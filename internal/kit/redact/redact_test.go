package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://registry:8081", "https://registry:8081"},
		{"https://u:s3cret@registry:8081/x", "https://*****@registry:8081/x"},
		{"https://u@registry", "https://*****@registry"},
		{"https://u:s3c/ret@registry", "https://*****@registry"},
		{"https://u:s3c@r#et@registry/p", "https://*****@registry/p"},
		{"http://u:pa%zz@reg/", "http://*****@reg/"},
		{"u:s3cret@registry:8081", "*****@registry:8081"},
		{"https://r.example.com/?api_key=s3c&region=eu", "https://r.example.com/?api_key=*****&region=eu"},
		{"https://r.example.com/?region=eu&Access%5FToken=s3c#top", "https://r.example.com/?region=eu&Access%5FToken=*****#top"},
		{"https://r.example.com/?sig&x=1", "https://r.example.com/?sig&x=1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want || strings.Contains(got, "s3c") {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://ingest:s3c@db:5432/x?sslmode=require", "postgres://*****@db:5432/x?sslmode=require"},
		{"postgresql://db/x?user=ingest&password=s3c", "postgresql://db/x?user=ingest&password=*****"},
		{"host=db user=ingest password='s3c ret' sslpassword=s3c dbname=x", "host=db user=ingest password=***** sslpassword=***** dbname=x"},
		{`host=db password='it\'s s3c'`, "host=db password=*****"},
		{"host=db", "host=db"},
		// What it cannot read, it masks whole.
		{"postgres://u:s3c@[::1", Mask},
		{"host=db password='s3c unterminated", Mask},
		{"justtext", Mask},
	}
	for _, tt := range tests {
		if got := DSN(tt.in); got != tt.want || strings.Contains(got, "s3c") {
			t.Errorf("DSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := DSN(""); got != "" && got != Mask {
		t.Errorf("DSN(\"\") = %q", got)
	}
}

func TestSecrets(t *testing.T) {
	const pw = "p@ss/w rd"
	err := fmt.Errorf("connect: %w", errors.New("failed for postgres://u:p%40ss%2Fw+rd@db and p@ss%2Fw%20rd and "+pw))
	got := Secrets(err.Error(), pw, "")
	if strings.Contains(got, "ss") || strings.Count(got, Mask) != 3 {
		t.Errorf("Secrets = %q, want the password masked in all three forms", got)
	}
	if got := Secrets("nothing here", pw); got != "nothing here" {
		t.Errorf("Secrets changed a text without the secret: %q", got)
	}
}
