package cdc

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := (&jsondec.Decoder{}).Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// ddbRecord is a record of Kinesis Data Streams for DynamoDB with the given
// eventName and dynamodb member (JSON).
func ddbRecord(event, dynamodb string) string {
	return `{"awsRegion":"us-east-1","eventID":"e1","eventName":` + event + `,"userIdentity":null,"recordFormat":"application/json","tableName":"Music","dynamodb":` + dynamodb + `,"eventSource":"aws:dynamodb"}`
}

// TestUntype: every DynamoDB type loses its type as a JSON decoder would
// give the value; a value that is not DynamoDB's typed JSON is an
// ErrDynamoDB naming the attribute's path.
func TestUntype(t *testing.T) {
	for _, tc := range []struct {
		name        string
		attr        string
		want        any
		errContains string
	}{
		{name: "S", attr: `{"S":"Call Me Today"}`, want: "Call Me Today"},
		{name: "empty S", attr: `{"S":""}`, want: ""},
		{name: "N int", attr: `{"N":"42"}`, want: json.Number("42")},
		{name: "N fraction", attr: `{"N":"-1.5"}`, want: json.Number("-1.5")},
		{name: "N exponent", attr: `{"N":"2.5E+3"}`, want: json.Number("2.5E+3")},
		{name: "N 38 digits", attr: `{"N":"12345678901234567890123456789012345678"}`, want: json.Number("12345678901234567890123456789012345678")},
		{name: "B", attr: `{"B":"aGVsbG8="}`, want: []byte("hello")},
		{name: "BOOL true", attr: `{"BOOL":true}`, want: true},
		{name: "BOOL false", attr: `{"BOOL":false}`, want: false},
		{name: "NULL", attr: `{"NULL":true}`, want: nil},
		{name: "SS", attr: `{"SS":["a","b"]}`, want: []any{"a", "b"}},
		{name: "NS", attr: `{"NS":["1","2.5"]}`, want: []any{json.Number("1"), json.Number("2.5")}},
		{name: "BS", attr: `{"BS":["AQ==","Ag=="]}`, want: []any{[]byte{1}, []byte{2}}},
		{name: "empty L", attr: `{"L":[]}`, want: []any{}},
		{name: "L of every kind", attr: `{"L":[{"S":"x"},{"N":"1"},{"NULL":true},{"BOOL":false},{"L":[{"N":"2"}]}]}`,
			want: []any{"x", json.Number("1"), nil, false, []any{json.Number("2")}}},
		{name: "nested M and L", attr: `{"M":{"city":{"S":"Oslo"},"geo":{"M":{"lat":{"N":"59.9"}}},"tags":{"L":[{"S":"a"},{"M":{"k":{"SS":["v"]}}}]}}}`,
			want: map[string]any{"city": "Oslo", "geo": map[string]any{"lat": json.Number("59.9")}, "tags": []any{"a", map[string]any{"k": []any{"v"}}}}},

		{name: "N as a JSON number", attr: `{"N":5}`, errContains: "a: not a DynamoDB change record: N wants a string, got a number"},
		{name: "N not a number", attr: `{"N":"1.2.3"}`, errContains: `a: not a DynamoDB change record: N "1.2.3" is not a number`},
		{name: "N Infinity", attr: `{"N":"Infinity"}`, errContains: `N "Infinity" is not a number`},
		{name: "N leading zero", attr: `{"N":"01"}`, errContains: `N "01" is not a number`},
		{name: "N empty", attr: `{"N":""}`, errContains: `N "" is not a number`},
		{name: "B not base64", attr: `{"B":"!!"}`, errContains: "a: not a DynamoDB change record: B is not base64"},
		{name: "BOOL a string", attr: `{"BOOL":"true"}`, errContains: "BOOL wants true or false, got a string"},
		{name: "NULL false", attr: `{"NULL":false}`, errContains: "NULL wants true, got a bool"},
		{name: "unknown type", attr: `{"X":"1"}`, errContains: `"X" is not a DynamoDB type`},
		{name: "two types", attr: `{"S":"a","N":"1"}`, errContains: "want a typed value, an object with one of S, N, B, BOOL, NULL, M, L, SS, NS or BS, got an object {N, S}"},
		{name: "untyped", attr: `"plain"`, errContains: "want a typed value, an object with one of S, N, B, BOOL, NULL, M, L, SS, NS or BS, got a string"},
		{name: "M a list", attr: `{"M":[]}`, errContains: "M wants an object, got a list"},
		{name: "L an object", attr: `{"L":{}}`, errContains: "L wants a list, got an object"},
		{name: "SS of numbers", attr: `{"SS":["a",1]}`, errContains: "a[1]: not a DynamoDB change record: SS wants strings, got a number"},
		{name: "NS of words", attr: `{"NS":["1","x"]}`, errContains: `a[1]: not a DynamoDB change record: N "x" is not a number`},
		{name: "error deep inside", attr: `{"M":{"b":{"L":[{"S":"ok"},{"N":true}]}}}`, errContains: "a.b[1]: not a DynamoDB change record: N wants a string, got a bool"},
		{name: "odd names quoted", attr: `{"M":{"a b":{"Q":1}}}`, errContains: `a["a b"]: not a DynamoDB change record`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := untype("a", decodeJSON(t, tc.attr))
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) || !errors.Is(err, ErrDynamoDB) {
					t.Fatalf("untype = %#v, %v; want an ErrDynamoDB containing %q", got, err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("untype = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDynamoDBRead: INSERT and MODIFY upsert the new image, REMOVE deletes
// the key (with the old image beside it); the envelope is beside the image
// under $ names, and the event time is read at the precision the record
// names or its magnitude tells. A record that is no DynamoDB change is an
// ErrDynamoDB naming what is wrong.
func TestDynamoDBRead(t *testing.T) {
	const keys = `{"Artist":{"S":"No One You Know"},"SongTitle":{"S":"Call Me Today"}}`
	const item = `{"Artist":{"S":"No One You Know"},"SongTitle":{"S":"Call Me Today"},"AlbumTitle":{"S":"Somewhat Famous"},"Awards":{"N":"1"}}`
	at := time.Date(2019, 10, 24, 0, 32, 33, 316000000, time.UTC) // 1571877153316 ms
	atMicros := at.Add(427 * time.Microsecond)
	for _, tc := range []struct {
		name        string
		record      string
		op          Op
		image       map[string]any // members of the image (a subset)
		at          time.Time      // $dynamodb.ApproximateCreationDateTime, if not zero
		errContains string
	}{
		{name: "INSERT, milliseconds",
			record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153316,"ApproximateCreationDateTimePrecision":"MILLISECOND","Keys":`+keys+`,"NewImage":`+item+`,"SizeBytes":111}`),
			op:     Upsert, at: at,
			image: map[string]any{"Artist": "No One You Know", "Awards": json.Number("1"), "AlbumTitle": "Somewhat Famous",
				"$eventName": "INSERT", "$tableName": "Music", "$awsRegion": "us-east-1", "$eventID": "e1", "$userIdentity": nil, "$eventSource": "aws:dynamodb"}},
		{name: "MODIFY, microseconds",
			record: ddbRecord(`"MODIFY"`, `{"ApproximateCreationDateTime":1571877153316427,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":`+keys+`,"NewImage":{"Artist":{"S":"No One You Know"},"SongTitle":{"S":"Call Me Today"},"Awards":{"N":"2"}},"OldImage":`+item+`}`),
			op:     Upsert, at: atMicros, image: map[string]any{"Awards": json.Number("2")}},
		{name: "milliseconds by magnitude",
			record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153316,"NewImage":`+item+`}`), op: Upsert, at: at},
		{name: "microseconds by magnitude",
			record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153316427,"NewImage":`+item+`}`), op: Upsert, at: atMicros},
		{name: "seconds by magnitude (DynamoDB Streams)",
			record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1.571877153E9,"NewImage":`+item+`}`), op: Upsert, at: at.Truncate(time.Second)},
		{name: "precision field wins over magnitude",
			record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153316,"ApproximateCreationDateTimePrecision":"MICROSECOND","NewImage":`+item+`}`),
			op:     Upsert, at: time.UnixMicro(1571877153316).UTC()},
		{name: "REMOVE with the old image",
			record: ddbRecord(`"REMOVE"`, `{"ApproximateCreationDateTime":1571877153316,"Keys":`+keys+`,"OldImage":`+item+`}`),
			op:     Delete, at: at, image: map[string]any{"Artist": "No One You Know", "SongTitle": "Call Me Today", "Awards": json.Number("1"), "$eventName": "REMOVE"}},
		{name: "REMOVE with keys only",
			record: ddbRecord(`"REMOVE"`, `{"ApproximateCreationDateTime":1571877153316,"Keys":`+keys+`}`),
			op:     Delete, image: map[string]any{"SongTitle": "Call Me Today"}},
		{name: "keys win over the image",
			record: ddbRecord(`"REMOVE"`, `{"Keys":{"id":{"N":"1"}},"OldImage":{"id":{"N":"2"}}}`), op: Delete, image: map[string]any{"id": json.Number("1")}},
		{name: "TTL expiry is a REMOVE",
			record: `{"eventName":"REMOVE","userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},"dynamodb":{"Keys":{"id":{"N":"1"}}}}`,
			op:     Delete, image: map[string]any{"id": json.Number("1"), "$userIdentity": map[string]any{"type": "Service", "principalId": "dynamodb.amazonaws.com"}}},
		{name: "the envelope's images are untyped too",
			record: ddbRecord(`"MODIFY"`, `{"Keys":{"id":{"N":"1"}},"NewImage":{"id":{"N":"1"}},"OldImage":{"id":{"N":"1"},"v":{"S":"old"}}}`),
			op:     Upsert, image: map[string]any{"$dynamodb": map[string]any{"Keys": map[string]any{"id": json.Number("1")}, "NewImage": map[string]any{"id": json.Number("1")}, "OldImage": map[string]any{"id": json.Number("1"), "v": "old"}}}},

		{name: "not an object", record: `[1]`, errContains: "$: not a DynamoDB change record: want an object, got a list"},
		{name: "no eventName", record: `{"dynamodb":{"NewImage":{}}}`, errContains: "eventName: not a DynamoDB change record: no eventName (want INSERT, MODIFY or REMOVE)"},
		{name: "unknown eventName", record: ddbRecord(`"UPDATE"`, `{"NewImage":{}}`), errContains: `eventName: not a DynamoDB change record: "UPDATE" is not an event`},
		{name: "eventName not a string", record: ddbRecord(`1`, `{"NewImage":{}}`), errContains: "eventName: not a DynamoDB change record: want a string, got a number"},
		{name: "no dynamodb", record: `{"eventName":"INSERT"}`, errContains: "dynamodb: not a DynamoDB change record: want the change in an object, got null"},
		{name: "INSERT without NewImage", record: ddbRecord(`"INSERT"`, `{"Keys":`+keys+`}`), errContains: "dynamodb.NewImage: not a DynamoDB change record: INSERT needs the item in dynamodb.NewImage"},
		{name: "REMOVE without keys", record: ddbRecord(`"REMOVE"`, `{"NewImage":null}`), errContains: "dynamodb.Keys: not a DynamoDB change record: REMOVE needs the item's key"},
		{name: "image not an item", record: ddbRecord(`"INSERT"`, `{"NewImage":[1]}`), errContains: "dynamodb.NewImage: not a DynamoDB change record: want an item"},
		{name: "untyped image", record: ddbRecord(`"INSERT"`, `{"NewImage":{"id":1}}`), errContains: "dynamodb.NewImage.id: not a DynamoDB change record: want a typed value"},
		// The same reason every time it is read: the first bad one by name.
		{name: "several untyped attributes", record: ddbRecord(`"INSERT"`, `{"NewImage":{"z":1,"q":2,"m":3,"b":4,"x":5,"a":6,"k":7,"c":{"S":"ok"}}}`), errContains: "dynamodb.NewImage.a: not a DynamoDB change record: want a typed value"},
		{name: "bad old image", record: ddbRecord(`"MODIFY"`, `{"NewImage":{"id":{"N":"1"}},"OldImage":{"id":{"N":"one"}}}`), errContains: `dynamodb.OldImage.id: not a DynamoDB change record: N "one" is not a number`},
		{name: "unknown precision", record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153,"ApproximateCreationDateTimePrecision":"SECOND","NewImage":{}}`),
			errContains: "dynamodb.ApproximateCreationDateTimePrecision: not a DynamoDB change record: SECOND is not a precision"},
		{name: "time a string", record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":"2019-10-24","NewImage":{}}`),
			errContains: "dynamodb.ApproximateCreationDateTime: not a DynamoDB change record: want an epoch number, got a string"},
		{name: "time out of range", record: ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1e300,"NewImage":{}}`),
			errContains: "dynamodb.ApproximateCreationDateTime: not a DynamoDB change record: 1e300 is outside years 1 to 9999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DynamoDB{}.Read(decodeJSON(t, tc.record))
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) || !errors.Is(err, ErrDynamoDB) {
					t.Fatalf("Read = %+v, %v; want an ErrDynamoDB containing %q", c, err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Op != tc.op {
				t.Fatalf("op %v, want %v", c.Op, tc.op)
			}
			for k, want := range tc.image {
				if got, ok := c.Image[k]; !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("image[%q] = %#v (present %v), want %#v", k, got, ok, want)
				}
			}
			if !tc.at.IsZero() {
				got := c.Image["$dynamodb"].(map[string]any)["ApproximateCreationDateTime"]
				if got != tc.at {
					t.Errorf("event time %v, want %v", got, tc.at)
				}
			}
		})
	}
}

// TestDynamoDBImageIntoFields: the untyped image fills a dataset's fields
// of every type, an N becoming int, float or decimal by the field's type;
// a value that does not fit its field is an error naming the field.
func TestDynamoDBImageIntoFields(t *testing.T) {
	s, err := schema.Compile("at", []schema.FieldSpec{
		{Name: "id", Type: "int", Key: true},
		{Name: "price", Type: "float"},
		{Name: "total", Type: "decimal[2]"},
		{Name: "title", Type: "str"},
		{Name: "note", Type: "optional[str]"},
		{Name: "active", Type: "bool"},
		{Name: "blob", Type: "bytes"},
		{Name: "tags", Type: "list[str]"},
		{Name: "scores", Type: "list[int]"},
		{Name: "blobs", Type: "list[bytes]"},
		{Name: "attrs", Type: "map[str]"},
		{Name: "address", Type: "struct", Fields: []schema.FieldSpec{{Name: "city", Type: "str"}, {Name: "zip", Type: "int"}}},
		{Name: "city", Type: "str", Ref: "address.city"},
		{Name: "event", Type: "str", Ref: "$eventName"},
		{Name: "at", Type: "datetime", Ref: "$dynamodb.ApproximateCreationDateTime"},
	})
	if err != nil {
		t.Fatal(err)
	}
	item := func(over map[string]string) string {
		attrs := map[string]string{
			"id": `{"N":"7"}`, "price": `{"N":"9.99"}`, "total": `{"N":"12.5"}`, "title": `{"S":"x"}`, "note": `{"NULL":true}`,
			"active": `{"BOOL":true}`, "blob": `{"B":"AAEC"}`, "tags": `{"SS":["a","b"]}`, "scores": `{"NS":["3","4"]}`,
			"blobs": `{"BS":["AQ=="]}`, "attrs": `{"M":{"k":{"S":"v"}}}`, "address": `{"M":{"city":{"S":"Oslo"},"zip":{"N":"150"}}}`,
		}
		for k, v := range over {
			attrs[k] = v
		}
		var b strings.Builder
		b.WriteString("{")
		first := true
		for k, v := range attrs {
			if v == "" {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			b.WriteString(`"` + k + `":` + v)
		}
		b.WriteString("}")
		return b.String()
	}
	const when = `"ApproximateCreationDateTime":1571877153316427,"ApproximateCreationDateTimePrecision":"MICROSECOND"`
	convert := func(over map[string]string) ([]record.Field, error) {
		c, err := DynamoDB{}.Read(decodeJSON(t, ddbRecord(`"MODIFY"`, `{`+when+`,"NewImage":`+item(over)+`}`)))
		if err != nil {
			t.Fatal(err)
		}
		return s.Convert(c.Image)
	}
	fields, err := convert(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, f := range fields {
		got[f.Name] = f.Value
	}
	want := map[string]any{
		"id": int64(7), "price": 9.99, "total": record.Decimal("12.50"), "title": "x", "note": nil, "active": true,
		"blob": []byte{0, 1, 2}, "tags": []any{"a", "b"}, "scores": []any{int64(3), int64(4)}, "blobs": []any{[]byte{1}},
		"attrs":   map[string]any{"k": "v"},
		"address": []record.Field{{Name: "city", Value: "Oslo"}, {Name: "zip", Value: int64(150)}},
		"city":    "Oslo", "event": "MODIFY", "at": time.UnixMicro(1571877153316427).UTC(),
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}

	for _, tc := range []struct {
		name        string
		over        map[string]string
		errContains string
	}{
		{name: "a fraction into int", over: map[string]string{"id": `{"N":"1.5"}`}, errContains: "id: want int, got"},
		{name: "a string into int", over: map[string]string{"id": `{"S":"7"}`}, errContains: "id: want int, got"},
		{name: "a number into str", over: map[string]string{"title": `{"N":"1"}`}, errContains: "title: want str"},
		{name: "too many decimals", over: map[string]string{"total": `{"N":"1.234"}`}, errContains: "total: "},
		{name: "NULL into a required field", over: map[string]string{"title": `{"NULL":true}`}, errContains: "title: "},
		{name: "a set of strings into list[int]", over: map[string]string{"scores": `{"SS":["a"]}`}, errContains: "scores[0]: want int"},
		{name: "a fraction deep in a struct", over: map[string]string{"address": `{"M":{"city":{"S":"Oslo"},"zip":{"N":"1.5"}}}`}, errContains: "address.zip: want int"},
		{name: "a list into a struct", over: map[string]string{"address": `{"L":[]}`}, errContains: "address: want"},
		{name: "a missing attribute", over: map[string]string{"price": ""}, errContains: "price: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, err := convert(tc.over)
			if err == nil || !strings.HasPrefix(err.Error(), strings.SplitN(tc.errContains, ":", 2)[0]) || !strings.Contains(err.Error(), tc.errContains) {
				t.Fatalf("Convert = %v, %v; want an error containing %q", fields, err, tc.errContains)
			}
		})
	}
}

// FuzzDynamoDBRead: any JSON value read as a DynamoDB record either is an
// ErrDynamoDB or a change whose image holds only what a decoder gives
// (decoders.Decoder's value tree, the event time a time.Time), so the
// schema converts it as it converts any record; Read never panics.
func FuzzDynamoDBRead(f *testing.F) {
	for _, s := range []string{
		ddbRecord(`"INSERT"`, `{"ApproximateCreationDateTime":1571877153316,"ApproximateCreationDateTimePrecision":"MILLISECOND","Keys":{"id":{"N":"1"}},"NewImage":{"id":{"N":"1"},"b":{"B":"AAE="},"m":{"M":{"l":{"L":[{"SS":["a"]},{"NS":["1"]},{"BS":["AQ=="]},{"NULL":true},{"BOOL":true}]}}}}}`),
		ddbRecord(`"MODIFY"`, `{"ApproximateCreationDateTime":1571877153316427,"NewImage":{"id":{"N":"-1.5e3"}},"OldImage":{"id":{"N":"0"}}}`),
		ddbRecord(`"REMOVE"`, `{"ApproximateCreationDateTime":1.5E9,"Keys":{"id":{"S":"x"}}}`),
		ddbRecord(`"REMOVE"`, `{"ApproximateCreationDateTime":-9e18,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"N":"1"}}}`),
		`{"eventName":"INSERT","dynamodb":{"NewImage":{"a":{"N":"01"}}}}`,
		`[]`, `null`, `{"eventName":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := (&jsondec.Decoder{}).Decode([]byte(s))
		if err != nil {
			return
		}
		c, err := DynamoDB{}.Read(v)
		if err != nil {
			if !errors.Is(err, ErrDynamoDB) {
				t.Fatalf("Read(%s): %v is not an ErrDynamoDB", s, err)
			}
			return
		}
		if c.Op != Upsert && c.Op != Delete {
			t.Fatalf("Read(%s): op %v", s, c.Op)
		}
		var check func(path string, v any)
		check = func(path string, v any) {
			switch x := v.(type) {
			case nil, bool, string, []byte:
			case json.Number:
				if !json.Valid([]byte(x)) {
					t.Fatalf("Read(%s): %q at %s is no JSON number", s, x, path)
				}
			case time.Time:
				if path != "$dynamodb.ApproximateCreationDateTime" {
					t.Fatalf("Read(%s): a time at %s", s, path)
				}
			case []any:
				for _, e := range x {
					check(path+"[]", e)
				}
			case map[string]any:
				for k, e := range x {
					check(path+"."+k, e)
				}
			default:
				t.Fatalf("Read(%s): %T at %s is not a decoded value", s, v, path)
			}
		}
		for k, x := range c.Image {
			check(k, x)
		}
	})
}
