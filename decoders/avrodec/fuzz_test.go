package avrodec

import (
	"encoding/binary"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders"
)

// noNetwork fails every request at once: the fuzzed registry decoder must
// only use its preloaded schemas, or give up as transient.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in the fuzz test")
}

// FuzzDecode feeds each input to every mode: raw binary (all_types.avsc),
// single-object encoded (the input behind all_types' header), Confluent with
// a preloaded cache (the input behind id 3's header, and the input as is), and
// FramingAuto with order_v1.avsc. The seed corpus (testdata/fuzz/FuzzDecode)
// holds the avsc fixtures of every framing and a few bad payloads.
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

	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, bin, data, true)
		check(t, soe, append(soeHeader[:len(soeHeader):len(soeHeader)], data...), true)
		check(t, reg, append(confluentHeader[:5:5], data...), true)
		check(t, reg, data, false)
		check(t, auto, data, true)
	})
}

func check(t *testing.T, d *Decoder, in []byte, record bool) {
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
		return
	}
	if _, ok := v.(map[string]any); record && !ok {
		t.Fatalf("Decode(%q) = %#v, want a record", in, v)
	}
	if bad := outsideContract(v); bad != nil {
		t.Fatalf("Decode(%q) = %#v holds %#v (%T), outside the decoders.Decoder value tree", in, v, bad, bad)
	}
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
