package kcl

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/golang/protobuf/proto"
)

// Aggregate frames a KPL aggregate: magic, protobuf, MD5 of the protobuf.
func Aggregate(msg []byte) []byte {
	sum := md5.Sum(msg)
	out := append([]byte{}, kplMagic...)
	out = append(out, msg...)
	return append(out, sum[:]...)
}

func aggregateOf(t *testing.T, keys []string, idx []uint64, data ...string) []byte {
	t.Helper()
	a := &records.AggregatedRecord{PartitionKeyTable: keys}
	for i, d := range data {
		a.Records = append(a.Records, &records.Record{PartitionKeyIndex: proto.Uint64(idx[i]), Data: []byte(d)})
	}
	msg, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return Aggregate(msg)
}

func TestGuardAggregatesKeepsTheBatch(t *testing.T) {
	good := aggregateOf(t, []string{"a", "b"}, []uint64{0, 1, 0}, "x", "y", "z")
	badProto := Aggregate([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
	badIndex := aggregateOf(t, []string{"a"}, []uint64{7}, "boom")
	batch := []types.Record{
		{Data: []byte(`{"plain":1}`), SequenceNumber: aws.String("1"), PartitionKey: aws.String("p")},
		{Data: good, SequenceNumber: aws.String("2"), PartitionKey: aws.String("p")},
		{Data: badProto, SequenceNumber: aws.String("3"), PartitionKey: aws.String("p")},
		{Data: badIndex, SequenceNumber: aws.String("4"), PartitionKey: aws.String("p")},
	}
	// Without the guard the library's de-aggregator loses the batch.
	if out, err := deagg.DeaggregateRecords(batch[:3]); err == nil && len(out) > 0 {
		t.Fatalf("expected the unguarded de-aggregator to fail on a bad aggregate; it returned %d records", len(out))
	}

	for i := range batch {
		guardRecord(&batch[i])
	}
	out, err := deagg.DeaggregateRecords(batch)
	if err != nil {
		t.Fatalf("guarded batch: %v", err)
	}
	// 1 plain + 3 sub-records + 2 marked records.
	if len(out) != 6 {
		t.Fatalf("got %d records, want 6", len(out))
	}
	var invalid int
	for _, r := range out {
		if orig, reason, ok := takeInvalid(r); ok {
			invalid++
			want := badProto
			if aws.ToString(r.SequenceNumber) == "4" {
				want = badIndex
			}
			if string(orig) != string(want) || reason == "" {
				t.Errorf("record %s: unwrapped %q (reason %q), want the original bytes", aws.ToString(r.SequenceNumber), orig, reason)
			}
		}
	}
	if invalid != 2 {
		t.Errorf("%d records marked invalid, want 2", invalid)
	}
}

// TestForgedMarkerDecodesNormally: a plain record whose bytes start with
// what the guard once put in-band (a marker, a reason, a NUL) is a plain
// record: its data reaches the pipeline unchanged and is decoded, not turned
// into a dead letter with a reason the producer chose.
func TestForgedMarkerDecodesNormally(t *testing.T) {
	forged := []byte("\x00kinesis-ingest:malformed-kpl-aggregate\x00the producer's reason\x00{\"id\":1}")
	bad := Aggregate([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
	batch := []types.Record{
		{Data: append([]byte(nil), forged...), SequenceNumber: aws.String("1"), PartitionKey: aws.String("p")},
		{Data: invertFirst(Aggregate([]byte{1})), SequenceNumber: aws.String("2"), PartitionKey: aws.String("p"), EncryptionType: types.EncryptionTypeKms}, // an aggregate's bytes inverted, as the guard leaves them, unflagged
		{Data: bad, SequenceNumber: aws.String("3"), PartitionKey: aws.String("p")},
	}
	for i := range batch {
		guardRecord(&batch[i])
	}
	out, err := deagg.DeaggregateRecords(batch)
	if err != nil || len(out) != 3 {
		t.Fatalf("guarded batch: %d records, %v", len(out), err)
	}
	for i, r := range out[:2] {
		if orig, reason, ok := takeInvalid(r); ok {
			t.Errorf("plain record %d flagged invalid (%q), data %q", i, reason, orig)
		}
	}
	if string(out[0].Data) != string(forged) {
		t.Errorf("plain record's data %q, want it unchanged", out[0].Data)
	}
	orig, reason, ok := takeInvalid(out[2])
	if !ok || string(orig) != string(bad) || !strings.HasPrefix(reason, "malformed KPL aggregate") {
		t.Errorf("the malformed aggregate: %v %q %q", ok, reason, orig)
	}
}

// TestGuardedEventsFlagsMalformedAggregates relays an event stream as
// Kinesis sends it for SubscribeToShard: the initial response, an event
// mixing plain records, a good aggregate and malformed ones, an event with
// nothing to flag, and an exception. Only the malformed aggregates change
// (flagged, their bytes recoverable); every other message, and every other
// field of the event, arrives as sent.
func TestGuardedEventsFlagsMalformedAggregates(t *testing.T) {
	good := aggregateOf(t, []string{"a", "b"}, []uint64{0, 1, 0}, "x", "y", "z")
	badProto := Aggregate([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
	badIndex := aggregateOf(t, []string{"a"}, []uint64{7}, "boom")
	type rec struct {
		Data           []byte
		PartitionKey   string
		SequenceNumber string
		EncryptionType string `json:",omitempty"`
	}
	type event struct {
		ContinuationSequenceNumber string
		MillisBehindLatest         int64
		Records                    []rec
	}
	msg := func(kind, typ string, payload any) []byte {
		t.Helper()
		p, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		m := eventstream.Message{Payload: p}
		m.Headers.Set(":message-type", eventstream.StringValue(kind))
		if kind == "exception" {
			m.Headers.Set(":exception-type", eventstream.StringValue("InternalFailureException"))
		} else {
			m.Headers.Set(":event-type", eventstream.StringValue(typ))
		}
		var b bytes.Buffer
		if err := eventstream.NewEncoder().Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	mixed := event{ContinuationSequenceNumber: "9", MillisBehindLatest: 12, Records: []rec{
		{Data: []byte(`{"plain":1}`), PartitionKey: "p", SequenceNumber: "1"},
		{Data: badProto, PartitionKey: "p", SequenceNumber: "2", EncryptionType: "NONE"},
		{Data: good, PartitionKey: "p", SequenceNumber: "3", EncryptionType: "NONE"},
		{Data: badIndex, PartitionKey: "p", SequenceNumber: "4"},
	}}
	clean := event{ContinuationSequenceNumber: "12", Records: []rec{
		{Data: good, PartitionKey: "p", SequenceNumber: "10"},
		{Data: []byte("plain"), PartitionKey: "p", SequenceNumber: "11"},
	}}
	sent := [][]byte{
		msg("event", "initial-response", map[string]any{}),
		msg("event", "SubscribeToShardEvent", mixed),
		msg("event", "SubscribeToShardEvent", clean),
		msg("exception", "", map[string]string{"message": "boom"}),
	}
	got, err := io.ReadAll(&guardedEvents{up: io.NopCloser(bytes.NewReader(bytes.Join(sent, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	var relayed [][]byte
	for r := bytes.NewReader(got); r.Len() > 0; {
		m, err := readMessage(r)
		if err != nil {
			t.Fatalf("relayed stream: %v", err)
		}
		relayed = append(relayed, m)
	}
	if len(relayed) != len(sent) {
		t.Fatalf("%d messages relayed, want %d", len(relayed), len(sent))
	}
	for _, i := range []int{0, 2, 3} {
		if !bytes.Equal(relayed[i], sent[i]) {
			t.Errorf("message %d changed; only events with malformed aggregates may", i)
		}
	}

	m, err := eventstream.NewDecoder().Decode(bytes.NewReader(relayed[1]), nil)
	if err != nil {
		t.Fatalf("the guarded event is no longer a valid message: %v", err)
	}
	var ev event
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ContinuationSequenceNumber != "9" || ev.MillisBehindLatest != 12 || len(ev.Records) != 4 {
		t.Fatalf("guarded event %+v: its other fields must be kept", ev)
	}
	var batch []types.Record
	for _, r := range ev.Records {
		batch = append(batch, types.Record{Data: r.Data, PartitionKey: aws.String(r.PartitionKey), SequenceNumber: aws.String(r.SequenceNumber), EncryptionType: types.EncryptionType(r.EncryptionType)})
	}
	out, err := deagg.DeaggregateRecords(batch)
	if err != nil || len(out) != 6 { // 1 plain + 3 sub-records + 2 flagged
		t.Fatalf("the guarded event's records de-aggregate to %d records, %v; want 6", len(out), err)
	}
	want := map[string][]byte{"2": badProto, "4": badIndex}
	for _, r := range out {
		seq := aws.ToString(r.SequenceNumber)
		orig, reason, ok := takeInvalid(r)
		if ok != (want[seq] != nil) {
			t.Errorf("record %s: flagged %v, want %v", seq, ok, want[seq] != nil)
		}
		if ok && (!bytes.Equal(orig, want[seq]) || !strings.HasPrefix(reason, "malformed KPL aggregate")) {
			t.Errorf("record %s: restored %q (reason %q), want its original bytes", seq, orig, reason)
		}
	}
}
