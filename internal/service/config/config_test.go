package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"gopkg.in/yaml.v3"
)

// testNow is the fixed "now" for warnings about init_position.
var testNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	now = func() time.Time { return testNow }
	hostname = func() (string, error) { return "testhost", nil }
	os.Exit(m.Run())
}

// header returns the text after "# <key>: " on the leading comment lines.
func header(data []byte, key string) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if v, ok := strings.CutPrefix(line, "# "+key+": "); ok {
			out = append(out, v)
		}
	}
	return out
}

// matchLines checks that got has exactly one line per want, in order, each
// containing its want.
func matchLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.Contains(got[i], want[i])
	}
	if !ok {
		t.Errorf("%s:\ngot:\n  %s\nwant lines containing:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			matchLines(t, "warnings", cfg.Warnings, header(data, "warn"))
			for _, d := range cfg.Datasets {
				if d.Schema == nil || d.Timestamp == "" {
					t.Errorf("dataset %s: Schema %v, Timestamp %q", d.Name, d.Schema, d.Timestamp)
				}
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	t.Setenv("KINESIS_INGEST_TEST_UNSET", "")
	os.Unsetenv("KINESIS_INGEST_TEST_UNSET")
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := header(data, "want")
			if len(want) == 0 {
				t.Fatal("no '# want:' lines")
			}
			cfg, err := Load(f)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config with an error")
			}
			matchLines(t, "errors", strings.Split(err.Error(), "\n"), want)
		})
	}
}

// TestFiveMistakes is the acceptance scenario: one file with five different
// mistakes reports all five, each with its YAML path, as *Error values.
func TestFiveMistakes(t *testing.T) {
	_, err := Load("testdata/five.bad.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not joined", err)
	}
	var paths []string
	for _, e := range j.Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%T is not *Error", e)
		}
		paths = append(paths, ce.Path)
	}
	want := []string{
		"sources[0].kinesis.stream_arn",
		"datasets[0].source",
		"datasets[0].fields[1].type",
		"sinks[0].file.max_byte",
		"consumer.lease_refresh",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths = %q, want %q", paths, want)
	}
}

func TestFull(t *testing.T) {
	cfg, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Sources[0].Kinesis
	if got := src.StreamARN; got != (StreamARN{"aws", "us-east-1", "000000000000", "orders"}) {
		t.Errorf("StreamARN = %+v", got)
	}
	if src.RoleARN == nil || src.RoleARN.String() != "arn:aws:iam::000000000000:role/reader" {
		t.Errorf("RoleARN = %v", src.RoleARN)
	}
	if src.ExternalID != "ingest-orders" || src.InitPosition.Kind != TrimHorizon || src.Format.Kind != FormatJSON {
		t.Errorf("kinesis = %+v", src)
	}
	if src.EFO == nil || *src.EFO != (EFO{ConsumerName: "orders-ingest"}) {
		t.Errorf("efo = %+v", src.EFO)
	}
	clicks := cfg.Sources[1].Kinesis
	if clicks.EFO == nil || clicks.EFO.ConsumerARN != "arn:aws-cn:kinesis:cn-north-1:000000000000:stream/clicks.v2/consumer/shared:1714557600" {
		t.Errorf("clicks efo = %+v", clicks.EFO)
	}
	if cfg.Sources[2].Kinesis.EFO != nil {
		t.Errorf("payments efo = %+v, want polling", cfg.Sources[2].Kinesis.EFO)
	}
	if clicks.RoleARN.Path != "/teams/web/" || clicks.RoleARN.Name != "clicks-reader" {
		t.Errorf("role path = %+v", clicks.RoleARN)
	}
	if clicks.Format.Kind != FormatAvro || clicks.Format.Avro.SchemaFile != filepath.Join("testdata", "clicks.avsc") {
		t.Errorf("avro = %+v", clicks.Format.Avro)
	}
	if !clicks.InitPosition.Timestamp.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("clicks init = %v", clicks.InitPosition)
	}
	reg := cfg.Sources[2].Kinesis.Format.Avro.Registry
	if reg == nil || reg.URL != "https://registry.example.com" || reg.Username != "ingest" || reg.Password != "secret" {
		t.Errorf("registry = %+v", reg)
	}
	d := cfg.Datasets[0]
	if d.Name != "orders" || !slices.Equal(d.Sources, []string{"orders"}) || d.Timestamp != "ts" || d.Where != "amount > 0" || d.Sink != "orders_file" || len(d.Fields) != 4 {
		t.Errorf("dataset = %+v", d)
	}
	if d.Fields[3].Name != "note" || d.Fields[3].Type != "optional[str]" {
		t.Errorf("field 3 = %+v", d.Fields[3])
	}
	if cfg.Datasets[1].Timestamp != "at" {
		t.Errorf("inferred timestamp = %q", cfg.Datasets[1].Timestamp)
	}
	if f := cfg.Sinks[0].File; f == nil || f.Path != filepath.Join("testdata", "out/orders") || f.MaxBytes != 67108864 || cfg.Sinks[0].Kind() != "file" {
		t.Errorf("file sink = %+v", f)
	}
	want := PostgresSink{DSN: "postgres://u:p@localhost/db", Table: "public.orders", CreateTable: true, BatchRows: 500, BatchBytes: 1048576, BatchInterval: 200 * time.Millisecond}
	if p := cfg.Sinks[1].Postgres; p == nil || *p != want || cfg.Sinks[1].Kind() != "postgres" {
		t.Errorf("postgres sink = %+v", p)
	}
	c := cfg.Consumer
	if c.Application != "orders-ingest" || c.WorkerID != "w1" || c.RoleARN.Name != "leases" ||
		c.ShardSyncInterval != 2*time.Second || c.LeaseDuration != 10*time.Second || c.LeaseRefresh != 2*time.Second ||
		c.MaxRecords != 1000 || c.IdleBetweenReads != 500*time.Millisecond || !c.LeaseStealing || c.MaxLeases != 0 ||
		c.CallTimeout != 5*time.Second || c.MaxInflightBytes != 512<<20 {
		t.Errorf("consumer = %+v", c)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9108" || cfg.Log != (Log{"info", "text"}) {
		t.Errorf("metrics/log = %+v %+v", cfg.Metrics, cfg.Log)
	}
	if cfg.Source("clicks") != &cfg.Sources[1] || cfg.Sink("warehouse") != &cfg.Sinks[1] || cfg.Source("nope") != nil || cfg.Sink("nope") != nil {
		t.Error("Source/Sink lookup")
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Sources[0].Kinesis
	if k.InitPosition != (InitPosition{Kind: Latest}) || k.Format != (Format{Kind: FormatJSON}) || k.RoleARN != nil {
		t.Errorf("kinesis defaults = %+v", k)
	}
	if cfg.Datasets[0].Timestamp != "ts" {
		t.Errorf("timestamp = %q", cfg.Datasets[0].Timestamp)
	}
	if f := cfg.Sinks[0].File; f.MaxBytes != DefaultFileMaxBytes {
		t.Errorf("max_bytes = %d", f.MaxBytes)
	}
	dl := cfg.DeadLetter
	want := PostgresSink{DSN: "host=localhost dbname=ingest", Table: "dead_letters", BatchRows: DefaultBatchRows, BatchBytes: DefaultBatchBytes, BatchInterval: DefaultBatchInterval}
	if dl.File != nil || dl.Postgres == nil || *dl.Postgres != want || dl.Unrouted {
		t.Errorf("dead letter = %+v", dl)
	}
	wantC := Consumer{
		Application:        "orders",
		WorkerID:           "testhost-" + strconv.Itoa(os.Getpid()),
		ShardSyncInterval:  5 * time.Second,
		LeaseDuration:      10 * time.Second,
		LeaseRefresh:       2 * time.Second,
		CheckpointInterval: 5 * time.Second,
		MaxRecords:         1000,
		IdleBetweenReads:   500 * time.Millisecond,
		LeaseStealing:      true,
		Balance:            "count",
		ShutdownTimeout:    30 * time.Second,
		CallTimeout:        10 * time.Second,
		MaxInflightBytes:   192 << 20,
		MaxLeasesPerPass:   50,
	}
	if cfg.Consumer != wantC {
		t.Errorf("consumer = %+v\nwant       %+v", cfg.Consumer, wantC)
	}
	// Free loopback ports: two workers with one config on one host both start.
	if cfg.Metrics.Listen != "127.0.0.1:0" || cfg.Log.Level != "info" || cfg.Log.Format != "text" {
		t.Errorf("metrics/log = %+v %+v", cfg.Metrics, cfg.Log)
	}
	if cfg.Errors.Listen != "127.0.0.1:0" {
		t.Errorf("errors.listen = %q, want a free loopback port, 127.0.0.1:0", cfg.Errors.Listen)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	cfg, err := Load("testdata/anchors.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Sinks[0].Postgres, cfg.Sinks[1].Postgres
	if a.Table != "a" || b.Table != "b" || b.DSN != a.DSN || b.BatchRows != 100 {
		t.Errorf("merged postgres = %+v / %+v", a, b)
	}
	if len(cfg.Datasets[1].Fields) != 2 || cfg.Datasets[1].Where != "id > 10" {
		t.Errorf("aliased fields = %+v", cfg.Datasets[1])
	}
	if cfg.DeadLetter.File.Path != "/var/lib/ingest/errors" || !cfg.DeadLetter.Unrouted {
		t.Errorf("dead letter = %+v", cfg.DeadLetter)
	}
}

func TestParseKeepsRelativePaths(t *testing.T) {
	data, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sinks[0].File.Path; got != "out/orders" {
		t.Errorf("path = %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n"} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), "config is empty") {
			t.Errorf("Parse(%q) = %v", in, err)
		}
	}
	_, err := Parse([]byte("[1, 2]"))
	if err == nil || !strings.HasPrefix(err.Error(), "expected a mapping with keys sources, datasets") {
		t.Errorf("list document: %v", err)
	}
}

func TestDuplicateKey(t *testing.T) {
	in := minimal + "log:\n  level: debug\n  level: warn\n"
	_, err := Parse([]byte(in))
	if err == nil || !strings.Contains(err.Error(), "log.level: duplicate key; it is already set on line") {
		t.Errorf("err = %v", err)
	}
}

const minimal = `
sources:
  - name: orders
    kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}
datasets:
  - {name: orders, source: orders, sink: out, fields: [{name: ts, type: datetime}]}
sinks:
  - {name: out, file: {path: out}}
dead_letter:
  file: {path: errors}
`

func TestEnvExpansion(t *testing.T) {
	t.Setenv("KI_ARN", "arn:aws:kinesis:us-east-1:000000000000:stream/orders")
	t.Setenv("KI_DSN", `host=db password='p#x: "y" {z}' dbname=ingest`)
	t.Setenv("KI_ROWS", "250")
	t.Setenv("KI_CREATE", "true")
	t.Setenv("KI_EMPTY", "")
	t.Setenv("KI_START", "1714557600.5")
	t.Setenv("KI_TABLE", "orders")
	in := `
sources:
  - name: orders
    kinesis:
      stream_arn: ${KI_ARN}
      init_position: ${KI_START}
datasets:
  - {name: orders, source: orders, sink: pg, fields: [{name: ts, type: datetime}]}
sinks:
  - name: pg
    postgres:
      dsn: ${KI_DSN}
      table: "${KI_TABLE}"
      batch_rows: ${KI_ROWS}
      create_table: ${KI_CREATE}
dead_letter:
  file: {path: '$${KI_ARN}/x-${KI_TABLE}$'}
metrics:
  listen: ${KI_EMPTY}
`
	cfg, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sources[0].Kinesis.StreamARN.Name != "orders" {
		t.Errorf("stream = %v", cfg.Sources[0].Kinesis.StreamARN)
	}
	if got := cfg.Sources[0].Kinesis.InitPosition.Timestamp; !got.Equal(time.Unix(1714557600, 500_000_000)) {
		t.Errorf("init = %v (an expanded plain scalar resolves as a float)", got)
	}
	p := cfg.Sinks[0].Postgres
	if p.DSN != os.Getenv("KI_DSN") || p.Table != "orders" || p.BatchRows != 250 || !p.CreateTable {
		t.Errorf("postgres = %+v", p)
	}
	if got := cfg.DeadLetter.File.Path; got != "${KI_ARN}/x-orders$" {
		t.Errorf("escaped path = %q", got)
	}
	if cfg.Metrics.Listen != "" {
		t.Errorf("listen = %q, want disabled", cfg.Metrics.Listen)
	}
}

func TestEnvQuotedStaysString(t *testing.T) {
	// A quoted ${VAR} stays a string even if the value looks like a number, so
	// an init_position of "1714557600" is (as in Fennel) not epoch seconds.
	t.Setenv("KI_START", "1714557600")
	in := strings.Replace(minimal, `stream/orders"}`, `stream/orders", init_position: "${KI_START}"}`, 1)
	_, err := Parse([]byte(in))
	if err == nil || !strings.Contains(err.Error(), `sources[0].kinesis.init_position: "1714557600" is not a valid init_position`) {
		t.Errorf("err = %v", err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "x", "B_2": "y z", "EMPTY": ""}
	lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	defer func() { lookupEnv = os.LookupEnv }()
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "pre-${A}-${B_2}-post", want: "pre-x-y z-post"},
		{in: "${EMPTY}", want: ""},
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"}, // leftmost match: "$" then the escape "$${"
		{in: "$A and $ and $}", want: "$A and $ and $}"},
		{in: "${A}${A}", want: "xx"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${A", err: "unterminated ${"},
		{in: "${}", err: `invalid environment variable name ""`},
		{in: "${A-B}", err: `invalid environment variable name "A-B"`},
		{in: "${1A}", err: `invalid environment variable name "1A"`},
	} {
		got, err := expand(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestInitPosition(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, us int) time.Time {
		return time.Date(y, mo, d, h, mi, s, us*1000, time.UTC)
	}
	for _, tc := range []struct {
		yaml string // one YAML scalar, as written after "init_position: "
		kind Kind
		want time.Time
		rel  time.Duration
		err  string
	}{
		{yaml: "latest", kind: Latest},
		{yaml: "LATEST", kind: Latest},
		{yaml: `"Trim_Horizon"`, kind: TrimHorizon},
		{yaml: "trim_horizon", kind: TrimHorizon},
		// ISO-8601 strings, as datetime.fromisoformat takes them.
		{yaml: "2024-05-01", kind: AtTimestamp, want: utc(2024, 5, 1, 0, 0, 0, 0)},
		{yaml: `"2024-05-01"`, kind: AtTimestamp, want: utc(2024, 5, 1, 0, 0, 0, 0)},
		{yaml: "2024-05-01T10:00:00", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "2024-05-01T10", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "2024-05-01T10:30", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 30, 0, 0)},
		{yaml: "2024-05-01 10:00:00.123456+02:00", kind: AtTimestamp, want: utc(2024, 5, 1, 8, 0, 0, 123456)},
		{yaml: "2024-05-01T10:00:00.5-05:30", kind: AtTimestamp, want: utc(2024, 5, 1, 15, 30, 0, 500000)},
		{yaml: "2024-05-01T10:00:00,25", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 250000)},
		{yaml: "2024-05-01T10:00:00Z", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "2024-05-01T10:00Z", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "2024-02-29T23:59:59.999999+00:00", kind: AtTimestamp, want: utc(2024, 2, 29, 23, 59, 59, 999999)},
		// YAML timestamps (!!timestamp), including forms only YAML accepts.
		{yaml: "2024-5-1", kind: AtTimestamp, want: utc(2024, 5, 1, 0, 0, 0, 0)},
		{yaml: "2024-05-01t10:00:00Z", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "2024-05-01 10:00:00.25", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 250000)},
		{yaml: "!!timestamp 2024-05-01T10:00:00+01:00", kind: AtTimestamp, want: utc(2024, 5, 1, 9, 0, 0, 0)},
		// Seconds since the epoch.
		{yaml: "1714557600", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "0", kind: AtTimestamp, want: utc(1970, 1, 1, 0, 0, 0, 0)},
		{yaml: "-1", kind: AtTimestamp, want: utc(1969, 12, 31, 23, 59, 59, 0)},
		{yaml: "1714557600.123456", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 123456)},
		{yaml: "1714557600.000001", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 1)},
		{yaml: "1714557600.999999", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 999999)},
		{yaml: "1714557600.5", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 500000)},
		{yaml: "1714557600.", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "1.7145576e9", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		{yaml: "-0.5", kind: AtTimestamp, want: utc(1969, 12, 31, 23, 59, 59, 500000)},
		{yaml: "!!float 1714557600", kind: AtTimestamp, want: utc(2024, 5, 1, 10, 0, 0, 0)},
		// Bad values.
		{yaml: "earliest", err: `"earliest" is not a valid init_position`},
		{yaml: `""`, err: `"" is not a valid init_position`},
		{yaml: `"1714557600"`, err: "write epoch seconds unquoted"},
		{yaml: "2024-05-01T10:00:00.1234567", err: `fraction "1234567" has more than 6 digits`},
		{yaml: "2024-05-01 10:00:00.1234567", err: "more precise than microseconds"},
		{yaml: "1714557600.1234567", err: "more precise than microseconds"},
		{yaml: "2024-13-01T00:00:00", err: "month 13 is out of range"},
		{yaml: "2024-02-30T00:00:00", err: "day 30 is out of range for 2024-02"},
		{yaml: "2024-05-01T24:00:00", err: "time 24:00:00 is out of range"},
		{yaml: "2024-05-01T10:00:00+24:00", err: `UTC offset "+24:00" is out of range`},
		{yaml: "2024-05-01T10:00:00+0200", err: "expected ':' in the UTC offset"},
		{yaml: "2024-05-01T10:00:00 UTC", err: "expected 'Z' or a ±HH:MM UTC offset"},
		{yaml: "2024-05-01X10:00", err: "expected 'T' or ' ' between date and time"},
		{yaml: "2024-05-01T", err: "expected a 2-digit hour at end of text"},
		{yaml: "20240501", kind: AtTimestamp, want: utc(1970, 8, 23, 6, 21, 41, 0)}, // an int: epoch seconds
		{yaml: `"20240501"`, err: `expected '-' after the year`},
		{yaml: "1714557600000", err: "not milliseconds"},
		{yaml: "1714557600000.5", err: "not milliseconds"},
		{yaml: "-99999999999", err: "before year 1"},
		{yaml: "99999999999999999999", err: "after year 9999"}, // YAML makes it a float
		{yaml: "0x10", err: "is not a decimal number"},
		{yaml: ".inf", err: "is not a finite number"},
		{yaml: ".nan", err: "is not a finite number"},
		{yaml: "true", err: `"true" (!!bool) is not a valid init_position`},
		{yaml: "~", err: "is empty"},
		{yaml: "[latest]", err: "expected a scalar, got a list"},
		{yaml: "!!binary bGF0ZXN0", err: "(!!binary) is not a valid init_position"},
		// Relative to now: resolved at the first start, so only the offset here.
		{yaml: "-72h", kind: AtTimestamp, rel: -72 * time.Hour},
		{yaml: "-30m", kind: AtTimestamp, rel: -30 * time.Minute},
		{yaml: "-1h30m", kind: AtTimestamp, rel: -90 * time.Minute},
		{yaml: "-7d", kind: AtTimestamp, rel: -7 * 24 * time.Hour},
		{yaml: "72h", err: `"72h" is not a valid init_position: expected a 4-digit year`},
		{yaml: "+72h", err: "is not in the past; a relative init_position goes back from now, so write it negative (e.g. -72h)"},
		{yaml: "-0s", err: "is not in the past"},
		{yaml: "-400d", err: "more than 365 days back"},
		{yaml: "-9000h", err: "more than 365 days back"},
		{yaml: "-3 days", err: "not a duration (write e.g. -72h, -30m or -7d)"},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		got, err := parseInitPosition(deref(&doc))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, %v; want error containing %q", tc.yaml, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if tc.rel != 0 {
			if got.Kind != AtTimestamp || got.Relative != tc.rel || !got.Timestamp.IsZero() {
				t.Errorf("%s: got %+v, want relative %s", tc.yaml, got, tc.rel)
			}
			now := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
			if r := got.Resolve(now); r.Relative != 0 || !r.Timestamp.Equal(now.Add(tc.rel).Truncate(time.Microsecond)) {
				t.Errorf("%s: resolved at %s to %+v", tc.yaml, now, r)
			}
			continue
		}
		if got.Kind != tc.kind || !got.Timestamp.Equal(tc.want) || (tc.kind == AtTimestamp && got.Timestamp.Location() != time.UTC) {
			t.Errorf("%s: got %v %v, want %v %v", tc.yaml, got.Kind, got.Timestamp, tc.kind, tc.want)
		}
	}
}

func TestInitPositionMethods(t *testing.T) {
	for _, tc := range []struct {
		p         InitPosition
		str, iter string
	}{
		{InitPosition{}, "latest", "LATEST"},
		{InitPosition{Kind: TrimHorizon}, "trim_horizon", "TRIM_HORIZON"},
		{InitPosition{Kind: AtTimestamp, Timestamp: time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)}, "2024-05-01T10:00:00.123456Z", "AT_TIMESTAMP"},
	} {
		if tc.p.String() != tc.str || tc.p.ShardIteratorType() != tc.iter {
			t.Errorf("%+v: %q %q", tc.p, tc.p.String(), tc.p.ShardIteratorType())
		}
	}
	var p InitPosition
	if err := yaml.Unmarshal([]byte("2024-05-01"), &p); err != nil || p.Kind != AtTimestamp {
		t.Errorf("UnmarshalYAML: %v %v", p, err)
	}
	if err := yaml.Unmarshal([]byte("soon"), &p); err == nil {
		t.Error("UnmarshalYAML accepted soon")
	}
}

func TestParseStreamARN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StreamARN
		err  string
	}{
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/orders", want: StreamARN{"aws", "us-east-1", "000000000000", "orders"}},
		{in: "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b_c-d", want: StreamARN{"aws-cn", "cn-north-1", "123456789012", "a.b_c-d"}},
		{in: "arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/x", want: StreamARN{"aws-us-gov", "us-gov-west-1", "123456789012", "x"}},
		{in: "arn:aws:kinesis:ap-southeast-3:123456789012:stream/" + strings.Repeat("s", 128), want: StreamARN{"aws", "ap-southeast-3", "123456789012", strings.Repeat("s", 128)}},
		{in: "", err: `not a Kinesis stream ARN: "": must start with "arn:"`},
		{in: "orders", err: `"orders": must start with "arn:"`},
		{in: "arn:aws:kinesis:us-east-1", err: `not a Kinesis stream ARN: "arn:aws:kinesis:us-east-1": too few parts`},
		{in: "arn:aws:sqs:us-east-1:000000000000:stream/a", err: `service is "sqs", want kinesis`},
		{in: "arn:aws-eu:kinesis:us-east-1:000000000000:stream/a", err: `unknown partition "aws-eu"`},
		{in: "arn:aws:kinesis:useast1:000000000000:stream/a", err: `region "useast1" is not a region name like us-east-1`},
		{in: "arn:aws:kinesis::000000000000:stream/a", err: `region "" is not a region name`},
		{in: "arn:aws:kinesis:cn-north-1:000000000000:stream/a", err: "belongs to partition aws-cn, not aws"},
		{in: "arn:aws-cn:kinesis:us-east-1:000000000000:stream/a", err: "belongs to partition aws, not aws-cn"},
		{in: "arn:aws:kinesis:us-gov-west-1:000000000000:stream/a", err: "belongs to partition aws-us-gov, not aws"},
		{in: "arn:aws:kinesis:us-east-1:00000000000:stream/a", err: `account "00000000000" must be exactly 12 digits`},
		{in: "arn:aws:kinesis:us-east-1:00000000000a:stream/a", err: "must be exactly 12 digits"},
		{in: "arn:aws:kinesis:us-east-1:000000000000:table/a", err: `resource "table/a" must be stream/<name>`},
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/", err: `stream name "" must be 1 to 128 characters`},
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/a b", err: `stream name "a b"`},
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/a:b", err: `stream name "a:b"`},
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/" + strings.Repeat("s", 129), err: "must be 1 to 128 characters"},
		{in: "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/c:1700000000", err: "this is a stream consumer ARN; use the stream's ARN, which ends at stream/orders"},
	} {
		got, err := ParseStreamARN(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseStreamARN(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStreamARN(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
	if (StreamARN{}).String() != "" {
		t.Error("zero StreamARN String")
	}
}

func TestParseRoleARN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RoleARN
		err  string
	}{
		{in: "arn:aws:iam::000000000000:role/reader", want: RoleARN{"aws", "000000000000", "/", "reader"}},
		{in: "arn:aws:iam::000000000000:role/teams/data/reader", want: RoleARN{"aws", "000000000000", "/teams/data/", "reader"}},
		{in: "arn:aws-cn:iam::123456789012:role/a+b=c,d.e@f_g-h", want: RoleARN{"aws-cn", "123456789012", "/", "a+b=c,d.e@f_g-h"}},
		{in: "arn:aws-us-gov:iam::123456789012:role/" + strings.Repeat("r", 64), want: RoleARN{"aws-us-gov", "123456789012", "/", strings.Repeat("r", 64)}},
		{in: "reader", err: `not an IAM role ARN: "reader": must start with "arn:"`},
		{in: "arn:aws:iam::000000000000", err: "too few parts"},
		{in: "arn:aws:s3::000000000000:role/r", err: `service is "s3", want iam`},
		{in: "arn:aws:sts::000000000000:assumed-role/r/session", err: "this is an assumed-role session ARN"},
		{in: "arn:aws-x:iam::000000000000:role/r", err: `unknown partition "aws-x"`},
		{in: "arn:aws:iam:us-east-1:000000000000:role/r", err: `IAM ARNs have no region, found "us-east-1"`},
		{in: "arn:aws:iam::0000:role/r", err: `account "0000" must be exactly 12 digits`},
		{in: "arn:aws:iam::000000000000:user/bob", err: `resource "user/bob" must be role/<name>`},
		{in: "arn:aws:iam::000000000000:role/", err: `role name "" must be 1 to 64 characters`},
		{in: "arn:aws:iam::000000000000:role/a b", err: `role name "a b"`},
		{in: "arn:aws:iam::000000000000:role/" + strings.Repeat("r", 65), err: "must be 1 to 64 characters"},
		{in: "arn:aws:iam::000000000000:role/pa th/r", err: `role path "/pa th/"`},
	} {
		got, err := ParseRoleARN(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRoleARN(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRoleARN(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestSchemaErrorsPrefixed(t *testing.T) {
	defer func(c func(string, []schema.FieldSpec) (*schema.Schema, error)) { compileSchema = c }(compileSchema)
	compileSchema = func(string, []schema.FieldSpec) (*schema.Schema, error) {
		return nil, errors.Join(
			errors.New("fields[0].type: bad"),
			errors.Join(errors.New("fields[0].fields[2].regex: nested"), errors.New("timestamp: missing")),
			errors.New("something without a path"),
		)
	}
	_, err := Parse([]byte(minimal))
	want := []string{
		"datasets[0].fields[0].type: bad",
		"datasets[0].fields[0].fields[2].regex: nested",
		"datasets[0].timestamp: missing",
		"datasets[0]: something without a path",
	}
	if err == nil {
		t.Fatal("no error")
	}
	// Errors are sorted by position; these paths share the dataset's line.
	got := strings.Split(err.Error(), "\n")
	slices.Sort(got)
	slices.Sort(want)
	matchLines(t, "errors", got, want)
}

func TestNoFollowUpErrors(t *testing.T) {
	in := strings.Replace(minimal, "sources:\n  - name: orders\n    kinesis:", "sources:\n  - orders\n  - name: orders\n    kinesis:", 1)
	_, err := Parse([]byte(in))
	want := []string{`sources[0]: expected a mapping with keys name, kinesis, env, bounded, idleness, max_record_age, expired, got scalar "orders"`}
	if err == nil {
		t.Fatal("no error")
	}
	matchLines(t, "errors", strings.Split(err.Error(), "\n"), want)
}

func TestSlogLevel(t *testing.T) {
	for lvl, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (Log{Level: lvl}).SlogLevel(); got != want {
			t.Errorf("%s: %v", lvl, got)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	reg := func(body string) string {
		return strings.Replace(minimal, `stream/orders"}`, `stream/orders", format: {avro: {registry: {url: "https://r", `+body+`}}}}`, 1)
	}
	for body, want := range map[string]string{
		"username: u":           "sources[0].kinesis.format.avro.registry.password: required with username",
		"password: p":           "sources[0].kinesis.format.avro.registry.username: required with password",
		"token: t, username: u": "sources[0].kinesis.format.avro.registry.token: cannot be used with username/password",
		"ca_file: nope.pem":     `sources[0].kinesis.format.avro.registry.ca_file: cannot read CA file "nope.pem"`,
	} {
		_, err := Parse([]byte(reg(body)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", body, err)
		}
	}
	cfg, err := Parse([]byte(reg("token: t")))
	if err != nil || cfg.Sources[0].Kinesis.Format.Avro.Registry.Token != "t" {
		t.Errorf("token: %v", err)
	}
}

// batch_interval 0 (no group-commit window) is the documented default, so it
// can also be written out.
func TestBatchIntervalZero(t *testing.T) {
	cfg, err := Parse([]byte(`
sources: [{name: src, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/a"}}]
datasets: [{name: d, source: src, sink: pg, fields: [{name: ts, type: datetime}]}]
sinks: [{name: pg, postgres: {dsn: "postgres://u@db/x", table: t, batch_interval: 0s}}]
dead_letter: {file: {path: out/errors}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sinks[0].Postgres.BatchInterval; got != 0 {
		t.Errorf("batch_interval = %s, want 0", got)
	}
}

// TestFileMode: files of raw payloads are 0600 unless mode says otherwise,
// in octal however YAML spells it.
func TestFileMode(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want os.FileMode
	}{
		{"", 0o600},
		{", mode: 0640", 0o640},
		{`, mode: "0640"`, 0o640},
		{", mode: 0o660", 0o660},
		{", mode: 600", 0o600},
	} {
		t.Run(tt.yaml, func(t *testing.T) {
			cfg, err := Parse([]byte(`
sources: [{name: src, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s"}}]
datasets: [{name: d, source: src, sink: f, fields: [{name: ts, type: datetime}]}]
sinks: [{name: f, file: {path: out/f` + tt.yaml + `}}]
dead_letter: {file: {path: out/dl` + tt.yaml + `}}
`))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Sinks[0].File.Mode; got != tt.want {
				t.Errorf("sink mode %#o, want %#o", got, tt.want)
			}
			if got := cfg.DeadLetter.File.Mode; got != tt.want {
				t.Errorf("dead-letter mode %#o, want %#o", got, tt.want)
			}
		})
	}
}
