package config

import (
	"slices"
	"strings"
	"testing"
)

// TestSampleUsing: the columns a sample hashes, by default and as named. As
// Fennel, the default leaves out fields with ref, const or expr (its preproc
// columns), and using may not name one, except a ref to record metadata.
func TestSampleUsing(t *testing.T) {
	const fields = `
      - {name: id, type: int}
      - {name: name, type: str}
      - {name: region, type: str, const: eu}
      - {name: doubled, type: int, expr: id * 2}
      - {name: city, type: str, ref: user.city}
      - {name: pk, type: str, ref: $partition_key}
      - {name: same, type: str, ref: same}
      - {name: ts, type: datetime}`
	for _, tc := range []struct {
		name, sample, cdc string
		keys              bool
		want              []string
		err               string
	}{
		{name: "default", sample: "0.5", want: []string{"id", "name", "same"}},
		{name: "keyed default", sample: "0.5", cdc: "upsert", keys: true, want: []string{"id", "name"}},
		{name: "metadata named", sample: "{rate: 0.5, using: [pk]}", want: []string{"pk"}},
		{name: "own name named", sample: "{rate: 0.5, using: [name, id]}", want: []string{"name", "id"}},
		{name: "const named", sample: "{rate: 0.5, using: [region]}", err: `"region" is a constant (const)`},
		{name: "expr named", sample: "{rate: 0.5, using: [doubled]}", err: `"doubled" is computed (expr)`},
		{name: "payload ref named", sample: "{rate: 0.5, using: [city]}", err: `"city" is read through ref: user.city`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := fields
			if tc.keys {
				fs = strings.Replace(fs, "{name: id, type: int}", "{name: id, type: int, key: true}", 1)
				fs = strings.Replace(fs, "{name: name, type: str}", "{name: name, type: str, key: true}", 1)
			}
			cdc := ""
			if tc.cdc != "" {
				cdc = "\n    cdc: " + tc.cdc
			}
			cfg, err := Parse([]byte(`
sources: [{name: src, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s"}}]
datasets:
  - name: d
    source: src` + cdc + `
    sample: ` + tc.sample + `
    fields:` + fs + `
    sink: f
sinks: [{name: f, file: {path: out/f}}]
dead_letter: {file: {path: out/e}}
`))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Datasets[0].Sample.Using; !slices.Equal(got, tc.want) {
				t.Errorf("using %v, want %v", got, tc.want)
			}
		})
	}
}
