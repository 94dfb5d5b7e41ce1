package avrodec

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// countingTransport fails every request, counting them.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return noNetwork{}.RoundTrip(nil)
}

// DecodeNamed answers for a registry payload whose schema is cached, as
// Decode's record; for one it would have to fetch, it declines without a
// request, and Decode makes the one fetch.
func TestDecodeNamedReadsOnlyTheRegistryCache(t *testing.T) {
	const order = `{"type":"record","name":"O","fields":[{"name":"id","type":"long"},
		{"name":"note","type":["null","string"]},{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}`
	tr := &countingTransport{}
	d := mustNew(t, Config{Registry: &Registry{URL: "http://registry.invalid",
		Preload: map[int]string{1: order}, HTTPClient: &http.Client{Transport: tr}}})
	codec, err := goavro.NewCodec(order)
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, map[string]any{"id": int64(1234567), "note": goavro.Union("string", "hi"),
		"ts": time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	cached := append([]byte{0, 0, 0, 0, 1}, body...)
	names, vals, ok := d.DecodeNamed(cached, nil)
	v, err := d.Decode(cached)
	m, _ := v.(map[string]any)
	if !ok || err != nil || len(names) != len(m) || len(vals) != len(names) {
		t.Fatalf("DecodeNamed = %q, %v, %v; Decode = %v, %v", names, vals, ok, v, err)
	}
	for i, n := range names {
		if !sameTree(vals[i], m[n]) {
			t.Errorf("%s = %#v, Decode gives %#v", n, vals[i], m[n])
		}
	}
	unknown := append([]byte{0, 0, 0, 0, 9}, body...)
	if _, _, ok := d.DecodeNamed(unknown, nil); ok || tr.n.Load() != 0 {
		t.Fatalf("DecodeNamed of an uncached id: ok %v after %d requests", ok, tr.n.Load())
	}
	if _, err := d.Decode(unknown); err == nil || tr.n.Load() != 1 {
		t.Fatalf("Decode of an unknown id: %v after %d requests, want an error after 1", err, tr.n.Load())
	}
}
