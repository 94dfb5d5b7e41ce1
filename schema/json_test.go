package schema

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// convertBoth converts the JSON record js by the general path (jsondec, then
// Convert) and by ConvertJSON, fails the test if they disagree, and returns the
// general path's result. Agreeing means: where the general path gives a row,
// ConvertJSON gives the same row (never declines); where it gives an error
// (decode or schema), ConvertJSON declines. A decode error is returned as is.
func convertBoth(t testing.TB, s *Schema, js string) ([]record.Field, error) {
	t.Helper()
	fast, ok := s.ConvertJSON([]byte(js))
	rec, err := jsondec.New().Decode([]byte(js))
	if err != nil {
		if ok {
			t.Errorf("ConvertJSON(%s) = %#v, but jsondec says %v", js, fast, err)
		}
		return nil, err
	}
	got, err := s.Convert(rec)
	switch {
	case err != nil && ok:
		t.Errorf("ConvertJSON(%s) = %#v, but Convert says %v", js, fast, err)
	case err == nil && !ok:
		t.Errorf("ConvertJSON(%s) declined; Convert gives %#v", js, got)
	case err == nil && !reflect.DeepEqual(fast, got):
		t.Errorf("ConvertJSON(%s)\n = %#v\nConvert gives\n   %#v", js, fast, got)
	}
	return got, err
}

// TestConvertJSONAgrees runs records that exercise the scanner (escapes,
// duplicates, whitespace, invalid JSON of every kind) through both paths.
func TestConvertJSONAgrees(t *testing.T) {
	s, err := Compile("ts", fuzzSpecs)
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range []string{
		`{"ts":0}`,
		` {"ts" : 0 , "note" : "a b" } `,
		"\t\r\n{\"ts\":0}\n",
		`{"ts":0,"note":"x","note":"y"}`,
		`{"ts":0,"note":5,"note":"y"}`, // a bad earlier duplicate: Convert sees only the last
		`{"ts":0,"note":"y","note":5}`, // and a bad last one
		`{"ts":0,"no\u0074e":"abc"}`,   // escaped key
		`{"ts":0,"note":"a\u0062c"}`,   // escaped value
		`{"ts":0,"kind":"\u0061"}`,     // escaped value under oneof
		`{"ts":"2024-01-01T00:00:00Z","tags":["\ud83d\ude00","\ud800","\ud800x","\udc00\ud800","\/\"\\\b\f\n\r\t"]}`,
		`{"ts":0,"tags":["é","☃","\u00e9"]}`,
		`{"ts":0,"attrs":{"a":1,"b":2.5,"a":3}}`,
		`{"ts":0,"attrs":{"a":"x","a":3}}`,
		`{"ts":0,"attrs":{"\u0061":1,"a":2}}`,
		`{"ts":0,"vec":[1,2,3]}`,
		`{"ts":0,"vec":[1,2]}`,
		`{"ts":0,"vec":[1,2,3,4]}`,
		`{"ts":0,"vec":[1,null,3]}`,
		`{"ts":0,"vec":[1e400,2,3]}`,
		`{"ts":0,"user":{"address":[{"city":"X"}]}}`,
		`{"ts":0,"user":{"address":[{"city":"X"}],"address":[{"city":"Y"}]}}`,
		`{"ts":0,"user":{"address":[]}}`,
		`{"ts":0,"user":{"address":null}}`,
		`{"ts":0,"user":null}`,
		`{"ts":0,"user":{"address":{"0":{}}}}`,
		`{"ts":0,"user":[]}`,
		`{"ts":0,"user":{"address":[{"city":null}]}}`,
		`{"ts":0,"user":{"address":[5]}}`,
		`{"ts":0,"items":[{"sku":"s","qty":1,"price":"1.5"}]}`,
		`{"ts":0,"items":[{"sku":"s","qty":1,"price":"1.5","meta":{"k":[1,null,2]}}]}`,
		`{"ts":0,"items":[{"sku":"s","qty":0,"price":"1.5"}]}`,
		`{"ts":0,"items":[{"sku":"s","qty":1}]}`,
		`{"ts":0,"items":[]}`,
		`{"ts":0,"items":{}}`,
		`{"ts":0,"blob":"aGk=","day":"2024-02-29","price":12.5}`,
		`{"ts":0,"blob":"!!","day":19782,"price":"1e-3"}`,
		`{"ts":0,"day":1.5}`,
		`{"ts":"1682099757.5","when":[1,"2024-01-01",1.5e3,"Sun, 23 Jan 2000 01:23:45 JST"]}`,
		`{"ts":-0,"id":-0,"amount":-0.0}`,
		`{"ts":1e2,"id":1E2,"amount":1e-400}`,
		`{"ts":0,"id":9223372036854775807,"amount":1e308}`,
		`{"ts":0,"id":9223372036854775808}`,
		`{"ts":0,"amount":1e400}`,
		`{"ts":0,"ok":true,"ok":false}`,
		`{"ts":0,"ignored":{"a":[1,{"b":[true,false,null,"x\"y"]}],"c":-1.5e-3}}`,
		`{"ts":0,"src":"other"}`,
		// Not valid JSON: both must say decode error / decline.
		``, ` `, `{`, `}`, `{"ts":0`, `{"ts":0}}`, `{"ts":0} x`, `{"ts":0}{}`,
		`{"ts":01}`, `{"ts":-}`, `{"ts":1.}`, `{"ts":.5}`, `{"ts":+1}`, `{"ts":1e}`, `{"ts":1e+}`,
		`{"ts":0,}`, `{,"ts":0}`, `{"ts" 0}`, `{ts:0}`, `{'ts':0}`, `{"ts":0 "a":1}`,
		`{"ts":0,"a":[1,]}`, `{"ts":0,"a":[,1]}`, `{"ts":0,"a":[1 2]}`, `{"ts":0,"a":tru}`, `{"ts":0,"a":nul}`,
		`{"ts":0,"a":"\x"}`, `{"ts":0,"a":"\u12"}`, `{"ts":0,"a":"\u12g4"}`, "{\"ts\":0,\"a\":\"\x01\"}",
		"{\"ts\":0,\"a\":\"\xff\"}", "\xef\xbb\xbf{\"ts\":0}", `{"ts":0,"a":"\'"}`,
		`{"ts":0,"a":NaN}`, `{"ts":0,"a":Infinity}`, `{"ts":0,"a":True}`,
		// Valid JSON of the wrong shape.
		`[]`, `null`, `"x"`, `5`, `{}`, `{"ts":null}`,
		strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1100),
		`{"ts":0,"deep":` + strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1100) + `}`,
		`{"ts":0,"deep":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`,
	} {
		convertBothTolerant(t, s, js)
	}
}

// convertBothTolerant is convertBoth, except that ConvertJSON may decline a
// record nested deeper than maxScanDepth.
func convertBothTolerant(t *testing.T, s *Schema, js string) {
	t.Helper()
	if depth(js) < maxScanDepth {
		convertBoth(t, s, js)
		return
	}
	fast, ok := s.ConvertJSON([]byte(js))
	rec, err := jsondec.New().Decode([]byte(js))
	if ok {
		got, cerr := s.Convert(rec)
		if err != nil || cerr != nil || !reflect.DeepEqual(fast, got) {
			t.Errorf("deep record: ConvertJSON = %v, general path %v, %v, %v", fast, got, err, cerr)
		}
	}
}

// depth is an upper bound of the nesting of js.
func depth(js string) int {
	d, m := 0, 0
	for i := 0; i < len(js); i++ {
		switch js[i] {
		case '[', '{':
			d++
			m = max(m, d)
		case ']', '}':
			d--
		}
	}
	return m
}

// A ref that starts with a list index could never match an object record:
// it is a config error, not a dead letter for every record.
func TestRefStartingWithIndexIsACompileError(t *testing.T) {
	_, err := Compile("", []FieldSpec{{Name: "ts", Type: "datetime"}, {Name: "x", Type: "optional[int]", Ref: "[0].a"}})
	if err == nil || !strings.Contains(err.Error(), `fields[1].ref: "[0].a" starts with a list index`) {
		t.Errorf("Compile = %v", err)
	}
}

func TestConvertJSONManyKeys(t *testing.T) {
	var specs []FieldSpec
	var js strings.Builder
	js.WriteString(`{"ts":0`)
	specs = append(specs, FieldSpec{Name: "ts", Type: "datetime"})
	for i := range 40 {
		specs = append(specs, FieldSpec{Name: fmt.Sprintf("f%d", i), Type: "optional[int]"})
		if i%3 != 0 {
			fmt.Fprintf(&js, `,"f%d":%d`, i, i)
		}
	}
	js.WriteString(`}`)
	s, err := Compile("ts", specs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convertBoth(t, s, js.String()); err != nil {
		t.Fatal(err)
	}
}

func TestConvertJSONAllocs(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{
		{Name: "id", Type: "int"}, {Name: "amount", Type: "float"}, {Name: "ts", Type: "datetime"},
		{Name: "note", Type: "optional[str]"}, {Name: "country", Type: "str"}, {Name: "qty", Type: "int"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"id":1234567,"amount":12.25,"ts":"2024-05-01T10:00:00.123456Z","note":"gift wrap","country":"DE","qty":3}`)
	// The copy of data, the []record.Field, and a box each for id, amount,
	// ts, note and country (qty fits a box for free).
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := s.ConvertJSON(data); !ok {
			t.Fatal("declined")
		}
	}); n > 7 {
		t.Errorf("%v allocations, want at most 7", n)
	}
	// A batch's way: one JSONRecord, one []record.Field for all its rows,
	// the values boxed in slabs: no allocation per row but a slab's now and
	// then.
	var r JSONRecord
	dst := make([]record.Field, 0, 1000)
	if n := testing.AllocsPerRun(100, func() {
		if !r.Scan(data) {
			t.Fatal("Scan failed")
		}
		var ok bool
		if dst, ok = s.AppendJSON(dst[:0], &r); !ok {
			t.Fatal("declined")
		}
	}); n > 0 {
		t.Errorf("Scan+AppendJSON: %v allocations per row, want 0", n)
	}
}

// The values boxed in a JSONRecord's slabs stay what they were converted
// to while the garbage collector runs and the record scans others: every
// row of a long batch, kept, equals ConvertJSON's.
func TestAppendJSONBoxesSurviveGC(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{
		{Name: "id", Type: "int"}, {Name: "amount", Type: "float"}, {Name: "ts", Type: "datetime"},
		{Name: "note", Type: "optional[str]"}, {Name: "small", Type: "int"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var r JSONRecord
	var rows [][]record.Field
	var want [][]record.Field
	var fields []record.Field
	for i := range 2000 {
		data := []byte(fmt.Sprintf(`{"id":%d,"amount":%d.5,"ts":%d,"note":"n%d","small":%d}`, 1000+i, i, 1700000000+i, i, i%256))
		if !r.Scan(data) {
			t.Fatal("Scan failed")
		}
		start := len(fields)
		var ok bool
		if fields, ok = s.AppendJSON(fields, &r); !ok {
			t.Fatalf("declined %s", data)
		}
		rows = append(rows, fields[start:])
		w, _ := s.ConvertJSON(data)
		want = append(want, w)
		if i%100 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i := range rows {
		if !reflect.DeepEqual(rows[i], want[i]) {
			t.Fatalf("row %d = %v, want %v", i, rows[i], want[i])
		}
	}
}

// A JSONRecord reset between batches reuses its slabs: from the second batch
// on, converting allocates nothing, and every row of each batch still equals
// ConvertJSON's, the garbage collector running in between.
func TestJSONRecordResetReusesBoxes(t *testing.T) {
	s, err := Compile("ts", []FieldSpec{
		{Name: "id", Type: "int"}, {Name: "amount", Type: "float"}, {Name: "ts", Type: "datetime"},
		{Name: "note", Type: "optional[str]"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 300 // more than two slabs of each type
	var r JSONRecord
	fields := make([]record.Field, 0, batch*4)
	for b := range 4 {
		recs := make([][]byte, batch)
		for i := range recs {
			n := b*batch + i
			recs[i] = []byte(fmt.Sprintf(`{"id":%d,"amount":%d.5,"ts":%d,"note":"n%d"}`, 1000+n, n, 1700000000+n, n))
		}
		convert := func() {
			fields = fields[:0]
			for _, data := range recs {
				var ok bool
				if !r.Scan(data) {
					t.Fatal("Scan failed")
				}
				if fields, ok = s.AppendJSON(fields, &r); !ok {
					t.Fatalf("declined %s", data)
				}
			}
		}
		if b == 0 {
			convert()
		} else if n := testing.AllocsPerRun(1, func() { r.Reset(); convert() }); n > 0 {
			t.Errorf("batch %d after Reset: %v allocations, want 0", b, n)
		}
		runtime.GC()
		for i, data := range recs {
			want, _ := s.ConvertJSON(data)
			if got := fields[4*i : 4*i+4]; !reflect.DeepEqual(got, want) {
				t.Fatalf("batch %d row %d = %v, want %v", b, i, got, want)
			}
		}
	}
}

// TestConvertJSONRandom compares both paths on generated records: every key
// of fuzzSpecs (and unknown ones), with values of every JSON kind and of the
// forms each type accepts or rejects, escapes, repeated keys and odd spacing.
func TestConvertJSONRandom(t *testing.T) {
	s, err := Compile("ts", fuzzSpecs)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	rows := 0
	for range n {
		js := randomRecord(r)
		if _, err := convertBoth(t, s, js); err == nil {
			rows++
		}
		if t.Failed() {
			t.Fatalf("record: %s", js)
		}
	}
	t.Logf("%d of %d generated records are rows", rows, n)
	if rows < n/20 {
		t.Errorf("only %d of %d generated records are rows: the generator misses the valid cases", rows, n)
	}
}

var randomKeys = []string{"ts", "id", "amount", "ok", "note", "kind", "level", "blob", "day", "price", "tags", "attrs", "vec", "when", "user", "items", "src", "other"}

func randomRecord(r *rand.Rand) string {
	var b strings.Builder
	ws := func() {
		if r.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[r.IntN(4)])
		}
	}
	ws()
	b.WriteByte('{')
	ws()
	b.WriteString(`"ts":`)
	b.WriteString(randomScalar(r, "ts"))
	for range r.IntN(8) {
		k := randomKeys[r.IntN(len(randomKeys))]
		b.WriteByte(',')
		ws()
		b.WriteString(randomKey(r, k))
		ws()
		b.WriteByte(':')
		ws()
		b.WriteString(randomValue(r, k, 0))
		ws()
	}
	b.WriteByte('}')
	ws()
	if r.IntN(200) == 0 { // now and then, something invalid
		js := []byte(b.String())
		js[r.IntN(len(js))] = "x,:]}\"\\\x01\xff"[r.IntN(9)]
		return string(js)
	}
	return b.String()
}

func randomKey(r *rand.Rand, k string) string {
	if r.IntN(10) == 0 && k != "" { // escape the first letter
		return fmt.Sprintf(`"\u%04x%s"`, k[0], k[1:])
	}
	return `"` + k + `"`
}

func randomValue(r *rand.Rand, k string, depth int) string {
	switch k {
	case "tags", "when", "vec":
		if r.IntN(6) > 0 {
			n := r.IntN(5)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = randomScalar(r, k)
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
	case "attrs":
		if r.IntN(6) > 0 {
			n := r.IntN(4)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = randomKey(r, string(rune('a'+r.IntN(3)))) + ":" + randomScalar(r, "amount")
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
	case "user":
		if r.IntN(6) > 0 {
			return `{"address":` + []string{`[{"city":` + randomScalar(r, "note") + `}]`, `[]`, `null`, `{}`, `"x"`, `[{"city":"A"},{"city":"B"}]`}[r.IntN(6)] + `}`
		}
	case "items":
		if r.IntN(6) > 0 {
			n := r.IntN(3)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = fmt.Sprintf(`{"sku":%s,"qty":%s,"price":%s,"meta":%s}`, randomScalar(r, "note"), randomScalar(r, "level"),
					randomScalar(r, "price"), []string{`null`, `{"k":[1,null]}`, `{"k":["x"]}`, `{}`}[r.IntN(4)])
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
	}
	if depth < 3 && r.IntN(10) == 0 {
		return `{"x":` + randomValue(r, "other", depth+1) + `,"y":[` + randomValue(r, "other", depth+1) + `]}`
	}
	return randomScalar(r, k)
}

func randomScalar(r *rand.Rand, k string) string {
	good := map[string][]string{
		"ts":     {`0`, `1682099757`, `1682099757123`, `1682099757.5`, `"2024-01-01T00:00:00Z"`, `"2024-02-29"`, `"Sun, 23 Jan 2000 01:23:45 JST"`, `"1682099757"`, `-1.5e3`, `1e30`, `"2023-02-29"`},
		"when":   {`0`, `"2024-01-01T10:00:00+02:00"`, `null`},
		"id":     {`1`, `-1000`, `2.0`, `1e3`, `9223372036854775807`, `9223372036854775808`, `-1001`, `2.5`},
		"level":  {`1`, `2`, `3`, `4`, `3.0`, `0`},
		"amount": {`12.5`, `0`, `-1`, `1e-400`, `1e400`, `1E+2`, `-0.0`, `123456789012345678901234567890`},
		"vec":    {`1`, `2.5`, `-3e-1`, `null`},
		"ok":     {`true`, `false`},
		"note":   {`"hi there"`, `"a\u0062c"`, `"x\ny"`, `"\ud83d\ude00"`, `"\ud800"`, `"é☃"`, `""`, `"UPPER"`, `"a\"b"`, `"\/"`},
		"kind":   {`"a"`, `"b"`, `"c"`, `"\u0061"`},
		"blob":   {`"aGk="`, `"aGk"`, `"aGk_Pz4-"`, `"!!"`, `""`},
		"day":    {`"2024-02-29"`, `19782`, `-719162`, `2932897`, `"2023-02-29"`, `1.5`},
		"price":  {`12.5`, `"12.50"`, `"1e-3"`, `12.345`, `"+1"`, `1e999999999`, `"007.10"`, `0.01`},
		"tags":   {`"x"`, `"\u00e9"`, `null`, `1`},
		"src":    {`"kinesis"`, `"other"`},
	}
	if vals, ok := good[k]; ok && r.IntN(5) > 0 {
		return vals[r.IntN(len(vals))]
	}
	return []string{`null`, `true`, `"s"`, `7`, `-0`, `[]`, `{}`, `[1,"2",null]`, `{"a":{"b":[]}}`, `0.5`}[r.IntN(10)]
}

// TestEmbeddingAllocatesByInput: an embedding's vector is sized by the
// record, not by the declared dimension: a short (wrong) record for
// embedding[1048576] allocates bytes, not 8 MiB, before it is refused; a
// full one is still one allocation of its size.
func TestEmbeddingAllocatesByInput(t *testing.T) {
	const dim = 1 << 20
	s, err := Compile("ts", []FieldSpec{{Name: "v", Type: "embedding[1048576]"}, {Name: "ts", Type: "datetime"}})
	if err != nil {
		t.Fatal(err)
	}
	perCall := func(data []byte, n int) (bytes uint64, ok bool) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			_, ok = s.ConvertJSON(data)
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / uint64(n), ok
	}
	if got, ok := perCall([]byte(`{"ts":1,"v":[1]}`), 20); ok || got > 64<<10 {
		t.Errorf(`{"v":[1]} for embedding[%d]: ok=%v, %d bytes allocated per record, want refused with under 64 KiB`, dim, ok, got)
	}
	full := []byte(`{"ts":1,"v":[` + strings.TrimSuffix(strings.Repeat("1,", dim), ",") + `]}`)
	if got, ok := perCall(full, 2); !ok || got > 2*8*dim {
		t.Errorf("a full embedding[%d]: ok=%v, %d bytes per record, want about %d", dim, ok, got, 8*dim)
	}
}

// exactFloat gives strconv.ParseFloat's float wherever it answers, and
// answers for the short decimals records carry.
func TestExactFloatMatchesParseFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	answered := 0
	for i := range 200000 {
		var lit string
		switch i % 3 {
		case 0: // short decimals, as amounts are written
			lit = fmt.Sprintf("%d.%0*d", r.Int64N(1e9), 1+r.IntN(6), r.Int64N(1e6))
		case 1: // around the 15 digits where exactFloat stops
			lit = fmt.Sprintf("%d.%d", r.Int64N(1e8), r.Int64N(1e9))
		default:
			lit = strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(30)-15)), 'f', -1, 64)
		}
		if r.IntN(2) == 0 {
			lit = "-" + lit
		}
		got, ok := exactFloat(lit)
		if !ok {
			continue
		}
		answered++
		want, err := strconv.ParseFloat(lit, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("exactFloat(%s) = %v, ParseFloat gives %v, %v", lit, got, want, err)
		}
	}
	if answered < 50000 { // the first case alone is 66,667
		t.Errorf("exactFloat answered %d of 200000", answered)
	}
	for _, lit := range []string{"", "-", "1e5", "1234567890123456", "0.0000000000000001", "1.5e-3"} {
		if f, ok := exactFloat(lit); ok {
			t.Errorf("exactFloat(%q) = %v, want no answer", lit, f)
		}
	}
}

// daysFromCivil agrees with time.Date on every day of 0000-9999 and on
// dates around them.
func TestDaysFromCivil(t *testing.T) {
	for d := time.Date(-401, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 10401; d = d.AddDate(0, 0, 1) {
		// Midnight UTC: Unix is a whole number of days.
		if got, want := daysFromCivil(d.Year(), int(d.Month()), d.Day()), d.Unix()/86400; got != want {
			t.Fatalf("daysFromCivil(%v) = %d, want %d", d, got, want)
		}
	}
}

// parseISO's arithmetic gives the very Time (wall, ext and location words,
// compared with ==) that time.Date and Add give.
func TestParseISOMatchesTimeDate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		y, mo := r.IntN(10000), 1+r.IntN(12)
		d := 1 + r.IntN(daysIn(mo, y))
		h, mi, sec, us := r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6)
		oh, om := r.IntN(24), r.IntN(60)
		sign := []byte("+-")[r.IntN(2)]
		s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06d%c%02d:%02d", y, mo, d, h, mi, sec, us, sign, oh, om)
		off := (oh*60 + om) * 60
		if sign == '-' {
			off = -off
		}
		want := time.Date(y, time.Month(mo), d, h, mi, sec, us*1000, time.UTC).Add(-time.Duration(off) * time.Second)
		if got, ok := parseISO(s); !ok || got != want {
			t.Fatalf("parseISO(%s) = %#v, %v, want %#v", s, got, ok, want)
		}
	}
}

// Scan takes the previous record's raw keys as guesses for the next one's:
// a JSONRecord reused over records whose keys are the previous ones escaped,
// cut short, extended, moved, repeated or followed by invalid text gives
// what a fresh ConvertJSON gives for each (and the generated records, one
// after the other, too).
func TestScanKeyGuesses(t *testing.T) {
	s, err := Compile("ts", fuzzSpecs)
	if err != nil {
		t.Fatal(err)
	}
	seq := []string{
		`{"ts":0,"note":"a","kind":"a"}`,
		`{"ts":0,"note":"a","kind":"a"}`,
		`{"ts":0,"no\u0074e":"b","kind":"b"}`, // escaped where a raw key was
		`{"ts":0,"no\u0074e":"b","kind":"b"}`, // and again (the escaped key is no guess)
		`{"ts":0,"not":"c","note":"c"}`,       // a guess longer than the key
		`{"ts":0,"notes":"c","note":"d"}`,     // the guess is a prefix
		`{"ts":0,"note`,                       // cut inside the guessed key
		`{"ts":0,"note"`,                      // just after it
		`{"ts":0,"note":"e","ts":1}`,          // repeated: the last wins
		`{"note":"f","ts":2}`,                 // moved
		`{"ts":0,"note":"g","kind":"a"}`,
		`{"ts":0,"note":"g"x,"kind":"a"}`, // invalid after a guessed key's value
		`{"ts":0,"level":1,"ok":true}`,
		`{"ts":0,"level":1,"ok":true,"level":2}`, // same length, first and last letters differ: found by the repeat check
		`{"ts":0,"le\u0076el":1,"level":3}`,
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		seq = append(seq, randomRecord(r))
	}
	var rec JSONRecord
	for i, js := range seq {
		want, wantOK := s.ConvertJSON([]byte(js))
		rec.Scan([]byte(js))
		got, ok := s.AppendJSON(nil, &rec)
		if ok != wantOK || ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d %s after %s: AppendJSON gave %v (ok %v), ConvertJSON %v (ok %v)", i, js, seq[max(i-1, 0)], got, ok, want, wantOK)
		}
		rec.Reset()
	}
}
