package avrodec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// noNetwork fails every request at once: the fuzzed registry decoder must
// only use its preloaded schemas, or give up as transient.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in the fuzz test")
}

// listingOnly answers GET /schemas with an empty listing, counting the
// calls, and fails every other request.
type listingOnly struct{ lists atomic.Int32 }

func (l *listingOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/schemas" {
		return nil, errors.New("no network in the fuzz test")
	}
	l.lists.Add(1)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("[]")), Header: http.Header{}, Request: r}, nil
}

// FuzzDecode feeds each input to every mode: raw binary (all_types.avsc),
// single-object encoded (the input behind all_types' header), Confluent with
// a preloaded cache (the input behind id 3's header, and the input as is), and
// FramingAuto with order_v1.avsc; raw binary of a bytes decimal converted to
// a decimal[2] (a huge one must be refused by its size, cheaply), and of an
// array of fixed "0" (bounded like an array of nulls). A registry whose
// GET /schemas answers is listed at most once per NotFoundTTL whatever
// fingerprints the inputs carry. The seed corpus (testdata/fuzz/FuzzDecode)
// holds the avsc fixtures of every framing, a few bad payloads, a 64 KiB
// decimal, block counts of fixed "0" and single-object headers of unknown
// fingerprints.
func FuzzDecode(f *testing.F) {
	all, order := schemaText(f, "all_types"), schemaText(f, "order_v1")
	bin := mustNew(f, Config{Schema: all, Framing: FramingBinary})
	soe := mustNew(f, Config{Schema: all, Framing: FramingSingleObject})
	auto := mustNew(f, Config{Schema: order})
	reg := mustNew(f, Config{Registry: &Registry{
		URL:        "http://registry.invalid",
		Preload:    map[int]string{1: order, 2: schemaText(f, "order_v2"), 3: all},
		HTTPClient: &http.Client{Transport: noNetwork{}},
	}})
	// Decimals are left to goavro: without them every value of all_types
	// goes through the direct decoder.
	noDec := mustNew(f, Config{Schema: withoutDecimals(f, all), Framing: FramingBinary})
	if noDec.local.root.noDirect {
		f.Fatal("all_types without decimals is still left to goavro")
	}
	soeHeader := binary.LittleEndian.AppendUint64([]byte{0xc3, 0x01}, soe.Fingerprint())
	confluentHeader := []byte{0, 0, 0, 0, 3}
	decimal := mustNew(f, Config{Schema: `{"type":"record","name":"D","fields":[
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`, Framing: FramingBinary})
	decimalRow, err := schema.Compile("ts", []schema.FieldSpec{{Name: "price", Type: "decimal[2]"}, {Name: "ts", Type: "datetime"}})
	if err != nil {
		f.Fatal(err)
	}
	zeroFixed := mustNew(f, Config{Schema: `{"type":"array","items":{"type":"fixed","name":"Z","size":"0"}}`, Framing: FramingBinary})
	listing := &listingOnly{}
	listed := mustNew(f, Config{Registry: &Registry{
		URL:         "http://registry.invalid",
		NotFoundTTL: time.Hour,
		HTTPClient:  &http.Client{Transport: listing},
	}})

	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, bin, data, true)
		check(t, noDec, data, true)
		check(t, soe, append(soeHeader[:len(soeHeader):len(soeHeader)], data...), true)
		check(t, reg, append(confluentHeader[:5:5], data...), true)
		check(t, reg, data, false)
		check(t, auto, data, true)
		if v := check(t, decimal, data, true); v != nil {
			_, err := decimalRow.Convert(v)
			if err != nil && len(err.Error()) > 2048 {
				t.Fatalf("decimal conversion error of %d bytes: %.200s", len(err.Error()), err)
			}
			// A huge value is refused by its size, never turned into text.
			if r, _ := v.(map[string]any)["price"].(*big.Rat); r != nil && r.Num().BitLen() > 512 &&
				(err == nil || !strings.Contains(err.Error(), "decimal of about")) {
				t.Fatalf("a %d-bit decimal: %.200v, want it refused by its size", r.Num().BitLen(), err)
			}
		}
		if items, ok := check(t, zeroFixed, data, false).([]any); ok && len(items) > maxZeroSizeItems {
			t.Fatalf("%d items of fixed \"0\" from %d bytes, want at most %d", len(items), len(data), maxZeroSizeItems)
		}
		check(t, listed, data, false)
		if n := listing.lists.Load(); n > 1 {
			t.Fatalf("the registry was listed %d times within NotFoundTTL", n)
		}
	})
}

// check decodes in with d and checks the result keeps the Decoder contract;
// it returns the value decoded, or nil.
func check(t *testing.T, d *Decoder, in []byte, record bool) any {
	v, err := d.Decode(in)
	// The direct decoder gives goavro's value tree, normalized, or goavro's
	// error (it leaves every failing payload to goavro's messages).
	ref, refErr := d.decode(in, false)
	if (err == nil) != (refErr == nil) || err != nil && err.Error() != refErr.Error() || !sameTree(v, ref) {
		t.Fatalf("Decode(%q) = %#v, %v; with goavro for every value %#v, %v", in, v, err, ref, refErr)
	}
	checkNamed(t, d, in, v, err)
	if err != nil {
		var de *Error
		switch {
		case v != nil:
			t.Fatalf("Decode(%q) = %#v with error %v", in, v, err)
		case errors.As(err, &de):
			if de.Offset < 0 || de.Offset > len(in) || strings.Contains(de.Msg, "decoder failure") {
				t.Fatalf("Decode(%q): %v", in, err)
			}
		case !errors.Is(err, decoders.ErrTransient):
			t.Fatalf("Decode(%q): %v is neither *Error nor transient", in, err)
		}
		return nil
	}
	if _, ok := v.(map[string]any); record && !ok {
		t.Fatalf("Decode(%q) = %#v, want a record", in, v)
	}
	if bad := outsideContract(v); bad != nil {
		t.Fatalf("Decode(%q) = %#v holds %#v (%T), outside the decoders.Decoder value tree", in, v, bad, bad)
	}
	return v
}

// checkNamed holds DecodeNamed to Decode's answer v, err for in: where it
// answers, Decode gives a record of exactly those fields and values.
func checkNamed(t *testing.T, d *Decoder, in []byte, v any, err error) {
	t.Helper()
	names, vals, ok := d.DecodeNamed(in, []any{"kept"})
	if !ok {
		if len(vals) != 1 {
			t.Fatalf("DecodeNamed(%q) declined but changed vals to %#v", in, vals)
		}
		return
	}
	m, isRecord := v.(map[string]any)
	if err != nil || !isRecord || len(vals) != 1+len(names) || len(m) != len(names) || vals[0] != "kept" {
		t.Fatalf("DecodeNamed(%q) = %q, %#v; Decode gives %#v, %v", in, names, vals, v, err)
	}
	for i, n := range names {
		if want, found := m[n]; !found || !sameTree(vals[1+i], want) {
			t.Fatalf("DecodeNamed(%q): %s = %#v; Decode gives %#v", in, n, vals[1+i], want)
		}
	}
}

// withoutDecimals returns the record schema text without its fields whose
// type mentions the decimal logical type.
func withoutDecimals(tb testing.TB, text string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		tb.Fatal(err)
	}
	var keep []any
	for _, f := range m["fields"].([]any) {
		b, _ := json.Marshal(f)
		if !strings.Contains(string(b), `"decimal"`) {
			keep = append(keep, f)
		}
	}
	m["fields"] = keep
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// sameTree is reflect.DeepEqual, except that a NaN equals a NaN with the
// same bits.
func sameTree(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameTree(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			if f, ok := y[k]; !ok || !sameTree(e, f) {
				return false
			}
		}
		return true
	}
	return false
}

// outsideContract returns a value of the tree that a decoders.Decoder may not
// return (a goavro union wrapper cannot be told apart from a map, but a
// time.Duration or a goavro type can), or nil.
func outsideContract(v any) any {
	switch x := v.(type) {
	case nil, bool, string, []byte, int32, int64, float32, float64, time.Time, *big.Rat:
		return nil
	case []any:
		for _, e := range x {
			if bad := outsideContract(e); bad != nil {
				return bad
			}
		}
		return nil
	case map[string]any:
		for _, e := range x {
			if bad := outsideContract(e); bad != nil {
				return bad
			}
		}
		return nil
	}
	return v
}

// The direct decoder gives goavro's normalized tree for the records avsc
// wrote (fixtures_test.go): all_types with its decimal fields taken out and
// re-encoded, so that every other type goes the direct way, and order_v1 as
// written (its decimal leaves the record to goavro).
func TestDirectMatchesGoavro(t *testing.T) {
	all := schemaText(t, "all_types")
	full := mustNew(t, Config{Schema: all, Framing: FramingBinary})
	noDecText := withoutDecimals(t, all)
	noDec := mustNew(t, Config{Schema: noDecText, Framing: FramingBinary})
	codec, err := goavro.NewCodec(noDecText)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"all_types.bin", "all_types_nulls.bin"} {
		payload, err := os.ReadFile(filepath.Join("testdata/avsc", name))
		if err != nil {
			t.Fatal(err)
		}
		native, _, err := full.local.codec.NativeFromBinary(payload)
		if err != nil {
			t.Fatal(err)
		}
		rec := native.(map[string]any)
		for k := range rec {
			if !strings.Contains(noDecText, `"`+k+`"`) {
				delete(rec, k)
			}
		}
		bin, err := codec.BinaryFromNative(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := noDec.Decode(bin)
		want, wantErr := noDec.decode(bin, false)
		if err != nil || wantErr != nil || !sameTree(got, want) {
			t.Errorf("%s: direct %#v, %v\ngoavro %#v, %v", name, got, err, want, wantErr)
		}
		if len(got.(map[string]any)) < 10 {
			t.Errorf("%s: only %d fields left without decimals", name, len(got.(map[string]any)))
		}
	}
	order := mustNew(t, Config{Schema: schemaText(t, "order_v1")})
	payload, err := os.ReadFile("testdata/avsc/order_v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := order.Decode(payload)
	want, wantErr := order.decode(payload, false)
	if err != nil || wantErr != nil || !sameTree(got, want) {
		t.Errorf("order_v1: %#v, %v; goavro %#v, %v", got, err, want, wantErr)
	}
}
