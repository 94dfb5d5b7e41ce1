package jsondec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        any
		errContains string
	}{
		{"object", `{"a":1,"b":"x","c":[true,null],"d":{"e":1.5e3}}`, map[string]any{
			"a": json.Number("1"), "b": "x", "c": []any{true, nil}, "d": map[string]any{"e": json.Number("1.5e3")},
		}, ""},
		{"big int survives", `{"id":12345678901234567890}`, map[string]any{"id": json.Number("12345678901234567890")}, ""},
		{"scalar", `42`, json.Number("42"), ""},
		{"string", `"hé"`, "hé", ""},
		{"null", `null`, nil, ""},
		{"whitespace around", " \t\r\n{}\n ", map[string]any{}, ""},
		{"duplicate key keeps last", `{"a":1,"a":2}`, map[string]any{"a": json.Number("2")}, ""},
		{"escaped lone surrogate", `"\ud800"`, "\ufffd", ""},
		{"empty", ``, nil, "invalid JSON at byte 0: empty input"},
		{"blank", "  \n", nil, "invalid JSON at byte 3: empty input"},
		{"trailing garbage", `{"a":1} x`, nil, "invalid JSON at byte 8: unexpected 'x' after the top-level value"},
		{"two values", `{}{}`, nil, "invalid JSON at byte 2: unexpected '{' after the top-level value"},
		{"two numbers", `1 2`, nil, "invalid JSON at byte 2: unexpected '2'"},
		{"trailing nul", "{}\x00", nil, "invalid JSON at byte 2: unexpected byte 0x00"},
		{"leading zero", `01`, nil, "invalid JSON at byte 1"},
		{"syntax", `{"a":}`, nil, "invalid JSON at byte 5: invalid character '}' looking for beginning of value"},
		{"trailing comma", `[1,2,]`, nil, "invalid JSON at byte 5: invalid character ']'"},
		{"truncated", `{"a":1`, nil, "invalid JSON at byte 6: unexpected end of input"},
		{"truncated string", `"abc`, nil, "invalid JSON at byte 4: unexpected end of input"},
		{"bad literal", `nul`, nil, "unexpected end of input"},
		{"NaN", `NaN`, nil, "invalid JSON at byte 0: invalid character 'N'"},
		{"invalid utf8", "{\"a\":\"\xc3\x28\"}", nil, "invalid JSON at byte 6: invalid UTF-8"},
		{"bom", "\ufeff{}", nil, "invalid JSON at byte 0: invalid character"},
		{"too deep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), nil, "exceeded max depth"},
	}
	d := New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Decode([]byte(tc.in))
			if tc.errContains != "" {
				var de *Error
				if err == nil || !errors.As(err, &de) || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("Decode(%q) = %#v, %v; want *Error containing %q", tc.in, got, err, tc.errContains)
				}
				if got != nil {
					t.Fatalf("value with error")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decode(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDecodeConcurrent(t *testing.T) {
	var d Decoder // the zero value works
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if _, err := d.Decode(benchRecord); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1.5e3,"x",null,true]}`, `[]`, `"\ud800\u00e9"`, `{"a":1} x`, ``, `-0.0e-0`, string(benchRecord)} {
		f.Add([]byte(s))
	}
	d := New()
	var r Record
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := d.Decode(data)
		// A copy: the fuzzer reuses data's memory, and the scan's key guess
		// reads the previous record's (as a batch's records, it is kept).
		scanned := r.Scan(bytes.Clone(data))
		if err != nil {
			var de *Error
			if v != nil || !errors.As(err, &de) || de.Offset < 0 || de.Offset > int64(len(data)) {
				t.Fatalf("Decode(%q) = %#v, %v", data, v, err)
			}
			if scanned {
				t.Fatalf("Scan accepted %q, which Decode refuses: %v", data, err)
			}
			return
		}
		// The scan takes exactly the objects Decode takes (but the deepest),
		// with the members Decode's map holds.
		m, isObject := v.(map[string]any)
		if scanned != (isObject && nesting(data) < MaxDepth) {
			t.Fatalf("Scan(%q) = %v; Decode gives %T", data, scanned, v)
		}
		for k, want := range m {
			val, _ := r.Lookup(k, 0)
			got, err := d.Decode([]byte(val))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Scan(%q): member %q is %q (%v), Decode's map holds %#v", data, k, val, err, want)
			}
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		v2, err := d.Decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %q: %v", again, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip changed the value:\n%#v\n%#v", v, v2)
		}
	})
}

// nesting is the deepest nesting of arrays and objects in valid JSON text.
func nesting(data []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

var benchRecord = []byte(`{"order_id":1234567890123,"user_id":42,"amount":129.95,"currency":"EUR",` +
	`"ts":"2024-05-01T12:34:56.789Z","note":null,"status":"paid","qty":3,` +
	`"price":"43.32","tags":["gift","express"]}`)

// BenchmarkDecode decodes a 10-field record.
func BenchmarkDecode(b *testing.B) {
	d := New()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	for b.Loop() {
		if _, err := d.Decode(benchRecord); err != nil {
			b.Fatal(err)
		}
	}
}
