package cdc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

func TestDebeziumRead(t *testing.T) {
	const after = `{"id":1,"name":"ann"}`
	const src = `{"connector":"postgresql","lsn":42,"ts_ms":1700000000000}`
	for _, tc := range []struct {
		name        string
		event       string
		op          Op
		skipped     string
		image       map[string]string // member -> its JSON
		errContains string
	}{
		{name: "create", event: `{"op":"c","before":null,"after":` + after + `,"source":` + src + `,"ts_ms":1700000000123}`,
			op: Upsert, image: map[string]string{"id": "1", "name": `"ann"`, "$ts_ms": "1700000000123", "$op": `"c"`, "$source": src}},
		{name: "snapshot read", event: `{"op":"r","after":` + after + `}`, op: Upsert, image: map[string]string{"id": "1"}},
		{name: "update", event: `{"op":"u","before":{"id":1,"name":"bob"},"after":` + after + `}`, op: Upsert, image: map[string]string{"name": `"ann"`}},
		{name: "delete takes before", event: `{"op":"d","before":{"id":1},"after":null,"ts_ms":5}`, op: Delete, image: map[string]string{"id": "1", "$ts_ms": "5"}},
		{name: "schema wrapper", event: `{"schema":{"type":"struct"},"payload":{"op":"u","after":` + after + `,"ts_ms":7}}`, op: Upsert, image: map[string]string{"name": `"ann"`, "$ts_ms": "7"}},
		{name: "wrapped tombstone", event: `{"schema":null,"payload":null}`, op: Skip, skipped: SkipTombstone},
		{name: "tombstone", event: `null`, op: Skip, skipped: SkipTombstone},
		{name: "truncate", event: `{"op":"t","ts_ms":1,"source":` + src + `}`, op: Skip, skipped: SkipTruncate},
		{name: "message", event: `{"op":"m","ts_ms":1}`, op: Skip, skipped: SkipMessage},
		{name: "heartbeat", event: `{"ts_ms":1700000000000}`, op: Skip, skipped: SkipHeartbeat},
		{name: "a table column named payload is not a wrapper", event: `{"op":"c","after":{"id":1},"payload":3}`, op: Upsert, image: map[string]string{"id": "1", "$payload": "3"}},
		{name: "no op", event: `{"after":` + after + `}`, errContains: "op: not a Debezium change event: no op"},
		{name: "unknown op", event: `{"op":"x","after":` + after + `}`, errContains: `op: not a Debezium change event: "x" is not an operation`},
		{name: "op not a string", event: `{"op":1,"after":` + after + `}`, errContains: "op: not a Debezium change event: want a string"},
		{name: "update without after", event: `{"op":"u","before":` + after + `,"after":null}`, errContains: `after: not a Debezium change event: op "u" needs the row image in after, which is missing or null`},
		{name: "delete without before", event: `{"op":"d","after":null}`, errContains: `before: not a Debezium change event: op "d" needs the row image in before`},
		{name: "after not an object", event: `{"op":"c","after":[1]}`, errContains: "which is a []interface {}"},
		{name: "not an object", event: `[1]`, errContains: "$: not a Debezium change event: want an object"},
		{name: "payload not an object", event: `{"schema":{},"payload":"x"}`, errContains: "payload: not a Debezium change event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := (&jsondec.Decoder{}).Decode([]byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Debezium{}.Read(v)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) || !errors.Is(err, ErrEnvelope) {
					t.Fatalf("Read = %+v, %v; want an ErrEnvelope containing %q", c, err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Op != tc.op || c.Skipped != tc.skipped {
				t.Fatalf("op %v skipped %q, want %v %q", c.Op, c.Skipped, tc.op, tc.skipped)
			}
			for k, want := range tc.image {
				got, _ := json.Marshal(c.Image[k])
				var w any
				_ = json.Unmarshal([]byte(want), &w)
				wj, _ := json.Marshal(w)
				if string(got) != string(wj) {
					t.Errorf("image[%q] = %s, want %s", k, got, wj)
				}
			}
			if c.Op == Skip && c.Image != nil {
				t.Errorf("a skipped event has an image: %v", c.Image)
			}
		})
	}
}
