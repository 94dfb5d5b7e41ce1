package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const metadataConfig = `
sources:
  - name: orders-src
    kinesis:
      stream_arn: %s
      init_position: trim_horizon
      format: json
datasets:
  - name: meta
    source: orders-src
    timestamp: ts
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
      - {name: pk, type: str, ref: $partition_key}
      - {name: shard, type: str, ref: $shard_id}
      - {name: seq, type: str, ref: $sequence_number}
      - {name: arrived, type: datetime, ref: $arrival_time}
      - {name: stream, type: str, ref: $stream}
      - {name: src, type: str, ref: $source}
      - {name: odd, type: "optional[str]", ref: '["$odd"]'}
    sink: meta_file
  - name: arrivals
    source: orders-src
    timestamp: arrived
    where: 'pk != "skip"'
    fields:
      - {name: id, type: int}
      - {name: arrived, type: datetime, ref: $arrival_time}
      - {name: raw, type: str, ref: $data}
    inputs:
      - {name: pk, type: str, ref: $partition_key}
    sink: arrivals_file
sinks:
  - name: meta_file
    file: {path: %s}
  - name: arrivals_file
    file: {path: %s}
dead_letter:
  file: {path: %s}
consumer:
  application: %s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`

// TestRecordMetadataFields: records put one by one on a two-shard stream
// become rows carrying the partition key, shard id and sequence number
// PutRecord returned, the arrival time Kinesis reports for them, the
// stream's and the source's names; a second dataset takes $arrival_time as
// its timestamp, $data as str, and filters on the partition key through an
// input.
func TestRecordMetadataFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	type put struct{ pk, shard, seq, data string }
	var puts []put
	for i := range 12 {
		pk := "customer-" + strconv.Itoa(i%5)
		if i == 7 {
			pk = "skip"
		}
		data := fmt.Sprintf(`{"id":%d,"ts":"2026-11-01T12:00:%02dZ","$odd":"o%d"}`, i, i, i)
		out, err := e.kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(e.stream), Data: []byte(data), PartitionKey: aws.String(pk)})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{pk, aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber), data})
	}
	shards := map[string]bool{}
	for _, p := range puts {
		shards[p.shard] = true
	}
	if len(shards) != 2 {
		t.Fatalf("the records went to %d shards, want both", len(shards))
	}
	// The arrival time Kinesis assigned each record, as GetRecords reports it.
	arrival := map[string]time.Time{}
	for shard := range shards {
		it, err := e.kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String(e.stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got.Records {
			arrival[aws.ToString(r.SequenceNumber)] = aws.ToTime(r.ApproximateArrivalTimestamp).UTC()
		}
	}

	metaDir, arrivalsDir := filepath.Join(e.dir, "meta"), filepath.Join(e.dir, "arrivals")
	cfg := filepath.Join(e.dir, "metadata.yaml")
	body := fmt.Sprintf(metadataConfig, e.arn, metaDir, arrivalsDir, e.lettersDir(), e.table)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	type metaRow struct {
		ID      int64   `json:"id"`
		PK      string  `json:"pk"`
		Shard   string  `json:"shard"`
		Seq     string  `json:"seq"`
		Arrived string  `json:"arrived"`
		Stream  string  `json:"stream"`
		Src     string  `json:"src"`
		Odd     *string `json:"odd"`
		Raw     string  `json:"raw"`
	}
	read := func(dir string) []metaRow {
		var out []metaRow
		if _, err := os.Stat(dir); err != nil {
			return nil
		}
		return append(out, readLines(t, dir, func(*metaRow, string) {})...)
	}
	w := e.start(cfg, "w1")
	waitFor(t, 90*time.Second, "every record in both datasets", func() bool {
		return len(read(metaDir)) >= len(puts) && len(read(arrivalsDir)) >= len(puts)-1
	})
	w.stop(30 * time.Second)

	rows := read(metaDir)
	if len(rows) != len(puts) {
		t.Fatalf("%d rows in meta, want %d", len(rows), len(puts))
	}
	for _, r := range rows {
		p := puts[r.ID]
		want := metaRow{ID: r.ID, PK: p.pk, Shard: p.shard, Seq: p.seq, Stream: e.stream, Src: "orders-src", Odd: aws.String("o" + strconv.FormatInt(r.ID, 10))}
		arrived, err := time.Parse(time.RFC3339Nano, r.Arrived)
		if err != nil {
			t.Errorf("record %d: arrived %q: %v", r.ID, r.Arrived, err)
		}
		if a, ok := arrival[p.seq]; !ok || !arrived.Equal(a) {
			t.Errorf("record %d: arrived %v, Kinesis reports %v", r.ID, arrived, a)
		}
		r.Arrived = ""
		if r.Odd == nil || *r.Odd != *want.Odd || r.PK != want.PK || r.Shard != want.Shard || r.Seq != want.Seq || r.Stream != want.Stream || r.Src != want.Src {
			t.Errorf("row %+v, want %+v", r, want)
		}
	}
	arrivals := read(arrivalsDir)
	if len(arrivals) != len(puts)-1 {
		t.Fatalf("%d rows in arrivals, want %d (all but the partition key skip)", len(arrivals), len(puts)-1)
	}
	for _, r := range arrivals {
		p := puts[r.ID]
		if p.pk == "skip" {
			t.Errorf("arrivals took record %d, whose partition key its where refuses", r.ID)
		}
		if arrived, err := time.Parse(time.RFC3339Nano, r.Arrived); err != nil || !arrived.Equal(arrival[p.seq]) {
			t.Errorf("record %d: timestamp %q, want its arrival %v", r.ID, r.Arrived, arrival[p.seq])
		}
		if r.Raw != p.data {
			t.Errorf("record %d: raw %q, want the payload %q", r.ID, r.Raw, p.data)
		}
	}
	if _, err := os.Stat(e.lettersDir()); err == nil && len(e.letters()) != 0 {
		t.Errorf("dead letters: %+v", e.letters())
	}
}
