package decompress_test

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/decompress"
	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

// A source whose producers compress some records and not others: auto tells
// them apart by their first bytes, and a record that inflates past the bound
// is a decode error naming it.
func Example() {
	dec, err := decompress.New(jsondec.New(), decompress.Config{Codec: decompress.Auto, MaxBytes: 1 << 10})
	if err != nil {
		panic(err)
	}
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	for _, rec := range [][]byte{
		gzipped([]byte(`{"id":1}`)),
		[]byte(`{"id":2}`),
		gzipped(bytes.Repeat([]byte(" "), 1<<20)), // 1 MiB of spaces in 1 KiB
	} {
		v, err := dec.Decode(rec)
		fmt.Println(v, err)
	}
	// Output:
	// map[id:1] <nil>
	// map[id:2] <nil>
	// <nil> gzip payload decompresses to more than the bound of 1024 bytes (max_decompressed_bytes)
}
