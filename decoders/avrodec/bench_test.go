package avrodec

import (
	"encoding/binary"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// BenchmarkDecode decodes the 10-field record of decoders/jsondec's
// BenchmarkDecode (order_v1.avsc, 46 bytes of Avro against 213 of JSON) in
// each framing; goavro is goavro's NativeFromBinary alone, the floor the
// checks and the union unwrapping add to.
func BenchmarkDecode(b *testing.B) {
	text := schemaText(b, "order_v1")
	codec, err := goavro.NewCodec(text)
	if err != nil {
		b.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, orderNative())
	if err != nil {
		b.Fatal(err)
	}
	binDec := mustNew(b, Config{Schema: text, Framing: FramingBinary})
	soeDec := mustNew(b, Config{Schema: text, Framing: FramingSingleObject})
	regDec := mustNew(b, Config{Registry: &Registry{URL: "http://registry.invalid", Preload: map[int]string{1: text}}})
	soe := append(binary.LittleEndian.AppendUint64([]byte{0xc3, 0x01}, soeDec.Fingerprint()), body...)
	confluent := append([]byte{0, 0, 0, 0, 1}, body...)

	run := func(name string, in []byte, decode func([]byte) (any, error)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := decode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("binary", body, binDec.Decode)
	run("confluent", confluent, regDec.Decode)
	run("soe", soe, soeDec.Decode)
	run("goavro", body, func(in []byte) (any, error) {
		v, _, err := codec.NativeFromBinary(in)
		return v, err
	})
}
