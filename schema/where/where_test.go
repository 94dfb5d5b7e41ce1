package where

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

var testFields = []schema.FieldSpec{
	{Name: "id", Type: "int"},
	{Name: "amount", Type: "float", Between: &schema.Between{Min: 0, Max: 1000}},
	{Name: "country", Type: "str", Oneof: []any{"DE", "FR", "US"}},
	{Name: "ts", Type: "datetime"},
	{Name: "note", Type: "optional[str]"},
	{Name: "discount", Type: "optional[float]"},
	{Name: "city", Type: "optional[str]", Ref: "user.address[0].city"},
	{Name: "region", Type: "str", Const: "eu", HasConst: true},
	{Name: "day", Type: "date"},
	{Name: "price", Type: "decimal[2]"},
	{Name: "tags", Type: "list[str]"},
	{Name: "attrs", Type: "map[int]"},
	{Name: "user", Type: "struct", Fields: []schema.FieldSpec{
		{Name: "tier", Type: "str", Regex: "gold|silver"},
		{Name: "since", Type: "optional[date]"},
	}},
	{Name: "order-id", Type: "int", Ref: "order_id"},
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "empty expression"},
		{"   ", "empty expression"},
		{"amont > 0", "unknown name amont (at column 1)"},
		{`amount == "x"`, "mismatched types float64 and string"},
		{"note > 3", "mismatched types string and int"},
		{"amount + 1", "expected bool, but got float64"},
		{"country", "expected bool, but got string"},
		{"user.zip == 'x'", "unknown field zip"},
		{"user.tier == 1", "mismatched types"},
		{"amount >", "unexpected token EOF"},
		{"ts > 5", "mismatched types time.Time and int"},
		{"attrs.color == 'red'", "mismatched types int64 and string"},
		{"'x' in id", "mismatched types"},
		{"amount > 0 &&\n  nope", "unknown name nope (at line 2, column 3)"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			f, err := Compile(tc.src, testFields)
			if err == nil {
				t.Fatalf("Compile(%q) = %v, want error containing %q", tc.src, f, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile(%q) error %q, want it to contain %q", tc.src, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Compile(%q) error %q spans lines", tc.src, err)
			}
			if errors.Is(err, ErrFields) {
				t.Errorf("Compile(%q): an expression error wraps ErrFields", tc.src)
			}
		})
	}
}

func TestCompileBadFields(t *testing.T) {
	fields := []schema.FieldSpec{{Name: "id", Type: "nope"}, {Name: "ts", Type: "datetime"}}
	// A field whose type does not parse is any: the expression still
	// type-checks its other names...
	if _, err := Compile("idd > 1", fields); err == nil || errors.Is(err, ErrFields) {
		t.Errorf("unknown name: err = %v, want an expression error", err)
	}
	// ...and using it reports the fields, which the schema reports anyway.
	if _, err := Compile("id > 1", fields); !errors.Is(err, ErrFields) {
		t.Errorf("err = %v, want ErrFields", err)
	}
	if _, err := Compile("ts > now()", fields); err != nil {
		t.Errorf("a where not naming the bad field: %v", err)
	}
}

const full = `"id":7,"amount":120.5,"country":"DE","ts":"2024-05-01T10:00:00Z","note":"gift wrap","discount":null,` +
	`"user":{"address":[{"city":"Berlin"}],"tier":"gold","since":"2020-01-02"},"day":"2024-05-01","price":"12.50",` +
	`"tags":["gift","express"],"attrs":{"size":3},"order_id":99`

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		src, rec string
		want     bool
		err      string // substring of the error; "" for none
	}{
		{`amount > 0 && country == "DE"`, `{` + full + `}`, true, ""},
		{`amount > 0 && country == "DE"`, `{"amount":1,"country":"FR"}`, false, ""},
		{`amount >= 100`, `{"amount":100}`, true, ""}, // an integer JSON number is a float
		{`amount >= 100`, `{"amount":99.99}`, false, ""},
		{`id == 7`, `{"id":7.0}`, true, ""},
		// Only the named fields are converted: other bad fields do not matter here.
		{`country == "DE"`, `{"country":"DE","amount":"lots","id":"x"}`, true, ""},
		// Restrictions are the dataset's business, not the where's.
		{`amount > 1000`, `{"amount":5000}`, true, ""},
		{`country == "XX"`, `{"country":"XX"}`, true, ""},
		{`country != "DE"`, `{"country":"DE"}`, false, ""},
		// A named field that does not fit its type, or is missing: undecidable.
		{`amount > 0`, `{"amount":"12"}`, false, "amount: want float, got string"},
		{`amount > 0`, `{}`, false, "amount: missing"},
		{`amount > 0`, `{"amount":null}`, false, "amount: "},
		{`amount > 0`, `[1,2]`, false, "want object"},
		// Optional fields are nil when null or missing.
		{`note != nil && note startsWith "gift"`, `{"note":"gift wrap"}`, true, ""},
		{`note != nil && note startsWith "gift"`, `{"note":null}`, false, ""},
		{`note == nil`, `{}`, true, ""},
		{`(note ?? "") == ""`, `{}`, true, ""},
		{`note == "x"`, `{"note":null}`, false, ""},
		{`discount > 0`, `{"discount":null}`, false, "invalid operation: <nil> > int (at column 10)"},
		{`(discount ?? 0) > 0`, `{"discount":null}`, false, ""},
		// ref, const and nested types.
		{`city == "Berlin"`, `{` + full + `}`, true, ""},
		{`city == nil`, `{"user":{"address":[]}}`, true, ""},
		{`city == nil`, `{"user":"x"}`, false, "city: ref user.address[0].city: want object"},
		{`region == "eu"`, `{}`, true, ""},
		{`ts >= date("2024-05-01") && ts < date("2024-05-02")`, `{"ts":1714557600000}`, true, ""},
		{`ts.Hour() == 10`, `{"ts":"2024-05-01T12:00:00+02:00"}`, true, ""},
		{`day == date("2024-05-01")`, `{"day":"2024-05-01"}`, true, ""},
		{`price > 12.49 && price < 12.51`, `{"price":"12.50"}`, true, ""},
		{`"gift" in tags && len(tags) == 2`, `{"tags":["gift","express"]}`, true, ""},
		{`any(tags, # == "express")`, `{"tags":[]}`, false, ""},
		{`attrs.size == 3 && attrs.color == nil`, `{"attrs":{"size":3}}`, true, ""},
		{`user.tier == "gold" && user.since < date("2021-01-01")`, `{` + full + `}`, true, ""},
		{`user.tier == "bronze"`, `{"user":{"tier":"bronze"}}`, true, ""},
		{`$env["order-id"] == 99`, `{` + full + `}`, true, ""},
		// No field named: the record is not looked at.
		{`true`, `"just a string"`, true, ""},
		{`now() > date("2000-01-01")`, `{}`, true, ""},
	} {
		t.Run(tc.src+" "+tc.rec, func(t *testing.T) {
			f, err := Compile(tc.src, testFields)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := jsondec.New().Decode([]byte(tc.rec))
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Match(rec)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Match: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Match error %v, want one containing %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Match error %q spans lines", err)
			}
			if got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
			// MatchJSON gives Match's answer where Match has one (unless the
			// expression names no field), and declines where Match fails.
			fast, ok := f.MatchJSON([]byte(tc.rec))
			switch {
			case err != nil && ok:
				t.Errorf("MatchJSON = %v, ok, where Match fails with %v", fast, err)
			case err == nil && f.sub != nil && !ok:
				t.Errorf("MatchJSON declined; Match = %v", got)
			case ok && fast != got:
				t.Errorf("MatchJSON = %v, Match = %v", fast, got)
			}
		})
	}
}

func TestConvertsOnlyNamedFields(t *testing.T) {
	f, err := Compile(`country == "DE" || amount > 500`, testFields)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range f.vars {
		names = append(names, v.name)
	}
	if got := strings.Join(names, ","); got != "amount,country" {
		t.Errorf("converted fields %s, want amount,country", got)
	}
	if f.String() != `country == "DE" || amount > 500` {
		t.Errorf("String() = %q", f.String())
	}
}

func TestNilFilterTakesEverything(t *testing.T) {
	var f *Filter
	if ok, err := f.Match(nil); !ok || err != nil {
		t.Errorf("nil Filter: Match = %v, %v", ok, err)
	}
}

// A field whose name is a timestamp-like word still works: the constant
// timestamp Compile adds for schema.Compile must not collide with it.
func TestNoNameCollision(t *testing.T) {
	fields := []schema.FieldSpec{{Name: "where_timestamp", Type: "int"}, {Name: "_where_timestamp", Type: "datetime"}}
	f, err := Compile("where_timestamp > 1 && _where_timestamp > date('2000-01-01')", fields)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := jsondec.New().Decode([]byte(`{"where_timestamp":2,"_where_timestamp":"2024-01-01"}`))
	if ok, err := f.Match(rec); !ok || err != nil {
		t.Errorf("Match = %v, %v", ok, err)
	}
}

func TestConcurrentMatch(t *testing.T) {
	f, err := Compile(`amount >= 100 && country == "DE"`, testFields)
	if err != nil {
		t.Fatal(err)
	}
	dec := jsondec.New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				amount, country := (g*200+i)%200, []string{"DE", "FR"}[i%2]
				rec, _ := dec.Decode(fmt.Appendf(nil, `{"amount":%d,"country":%q}`, amount, country))
				got, err := f.Match(rec)
				if want := amount >= 100 && country == "DE"; err != nil || got != want {
					t.Errorf("amount %d country %s: Match = %v, %v; want %v", amount, country, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Strings are compared generically, so a nil string (null optional, missing
// map key) is unequal to any string instead of failing.
func TestNilStrings(t *testing.T) {
	fields := []schema.FieldSpec{
		{Name: "note", Type: "optional[str]"},
		{Name: "labels", Type: "map[str]"},
		{Name: "names", Type: "list[optional[str]]"},
		{Name: "s", Type: "struct", Fields: []schema.FieldSpec{{Name: "x", Type: "optional[str]"}}},
		{Name: "country", Type: "str"},
	}
	rec, _ := jsondec.New().Decode([]byte(`{"note":null,"labels":{"a":"b"},"names":[null,"x"],"s":{},"country":"DE"}`))
	for src, want := range map[string]bool{
		`note == "x"`:           false,
		`note != "x"`:           true,
		`labels.color == "red"`: false,
		`labels.a == "b"`:       true,
		`any(names, # == "x")`:  true,
		`s.x == "y"`:            false,
		`country == "DE" && upper(country) == "DE" && country + "!" == "DE!"`:  true,
		`country in ["DE", "AT"] && country matches "^D" && len(country) == 2`: true,
	} {
		f, err := Compile(src, fields)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got, err := f.Match(rec); got != want || err != nil {
			t.Errorf("%s: Match = %v, %v; want %v", src, got, err, want)
		}
	}
}

func TestNestedTypes(t *testing.T) {
	fields := []schema.FieldSpec{
		{Name: "xs", Type: "list[map[str]]"},
		{Name: "os", Type: "optional[list[optional[str]]]"},
		{Name: "items", Type: "list[struct]", Fields: []schema.FieldSpec{{Name: "price", Type: "decimal[2]"}, {Name: "sku", Type: "str"}}},
		{Name: "days", Type: "map[optional[date]]"},
		{Name: "e", Type: "embedding[2]"},
	}
	rec, _ := jsondec.New().Decode([]byte(`{"xs":[{"a":"b"}],"os":["x",null],"items":[{"price":"9.99","sku":"A"},{"price":1,"sku":"B"}],` +
		`"days":{"a":"2024-01-02","b":null},"e":[0.5,1]}`))
	for _, src := range []string{
		`any(xs, #.a == "b") && all(xs, #.z == nil)`,
		`"x" in os && nil in os && len(os) == 2`,
		`any(items, .price > 9.98 && .sku == "A") && sum(items, .price) > 10`,
		`days.a == date("2024-01-02") && days.b == nil`,
		`e[0] == 0.5 && len(e) == 2`,
	} {
		f, err := Compile(src, fields)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got, err := f.Match(rec); !got || err != nil {
			t.Errorf("%s: Match = %v, %v; want true", src, got, err)
		}
	}
}

// An expression that names no field answers on the fast path for any valid
// JSON record, match or not (the scan has checked the JSON), and declines
// invalid JSON, whose decode_error the general path must give.
func TestMatchJSONWithoutFields(t *testing.T) {
	for _, tc := range []struct {
		expr, data string
		want, ok   bool
	}{
		{"true", `{"id": 1}`, true, true},
		{"1 + 1 == 2", `{"id": 1}`, true, true},
		{"false", `{"id": 1}`, false, true},
		{"true", `{"id": 1`, false, false},
		{"false", `{"id": 1`, false, false},
		{"true", `[1]`, false, false},
	} {
		f, err := Compile(tc.expr, testFields)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := f.MatchJSON([]byte(tc.data)); m != tc.want || ok != tc.ok {
			t.Errorf("%s on %s: MatchJSON = %v, %v; want %v, %v", tc.expr, tc.data, m, ok, tc.want, tc.ok)
		}
	}
}
