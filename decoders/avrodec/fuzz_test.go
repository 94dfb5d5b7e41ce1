package avrodec

import (
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
		Attempts:   1,
		Backoff:    time.Nanosecond,
		Preload:    map[int]string{1: order, 2: schemaText(f, "order_v2"), 3: all},
		HTTPClient: &http.Client{Transport: noNetwork{}},
	}})
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
		Attempts:    1,
		Backoff:     time.Nanosecond,
		NotFoundTTL: time.Hour,
		HTTPClient:  &http.Client{Transport: listing},
	}})

	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, bin, data, true)
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
