package postgres

import (
	"slices"
	"strings"
	"testing"
)

// TestParseTable is the table-name rule the configuration, the sinks and the
// errors view share: what PostgreSQL would read unquoted, at most 63 bytes a
// part (longer names the server truncates silently), folded to lower case.
func TestParseTable(t *testing.T) {
	long := strings.Repeat("a", maxIdentLen)
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "plain", in: "orders", want: []string{"orders"}},
		{name: "folded like unquoted SQL", in: "Orders", want: []string{"orders"}},
		{name: "schema-qualified", in: "Ingest.Orders_2024$", want: []string{"ingest", "orders_2024$"}},
		{name: "63 bytes a part", in: long + "." + long, want: []string{long, long}},
		{name: "64 bytes", in: long + "a", wantErr: true},
		{name: "three parts", in: "a.b.c", wantErr: true},
		{name: "SQL in it", in: "orders; drop table x", wantErr: true},
		{name: "starts with a digit", in: "1orders", wantErr: true},
		{name: "quoted", in: `"orders"`, wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseTable(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "is not a table name") {
					t.Fatalf("ParseTable(%q) = %v, %v; want an error saying it is not a table name", tt.in, id, err)
				}
				return
			}
			if err != nil || !slices.Equal([]string(id), tt.want) {
				t.Fatalf("ParseTable(%q) = %v, %v; want %v", tt.in, id, err, tt.want)
			}
		})
	}
}
