package avrodec_test

import (
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/avrodec"
)

func Example() {
	d, err := avrodec.New(avrodec.Config{Schema: `{
		"type": "record", "name": "Order",
		"fields": [
			{"name": "id", "type": "long"},
			{"name": "note", "type": ["null", "string"]},
			{"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}
		]}`})
	if err != nil {
		panic(err)
	}
	// id 21 (zig-zag 42), note: union branch 1 "hi", ts 1714566896789
	rec, err := d.Decode([]byte{42, 2, 4, 'h', 'i', 0xaa, 0xf2, 0xb4, 0xc2, 0xe6, 0x63})
	fmt.Println(rec, err)
	_, err = d.Decode([]byte{42, 0, 0, 0xff})
	fmt.Println(err)
	// Output:
	// map[id:21 note:hi ts:2024-05-01 12:34:56.789 +0000 UTC] <nil>
	// invalid Avro at byte 3: 1 trailing bytes after the record
}
