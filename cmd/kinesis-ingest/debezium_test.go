package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
)

// debeziumEnvelope is the Avro schema of a Debezium PostgreSQL connector's
// change events for a table users(id bigint primary key, name text), as its
// Avro converter registers it (trimmed to the members the test uses).
const debeziumEnvelope = `{"type":"record","name":"Envelope","namespace":"dbserver1.public.users","fields":[
 {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
   {"name":"id","type":"long"},{"name":"name","type":["null","string"],"default":null}]}],"default":null},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
   {"name":"connector","type":"string"},{"name":"lsn","type":["null","long"],"default":null}]}},
 {"name":"op","type":"string"},
 {"name":"ts_ms","type":["null","long"],"default":null}]}`

// dbzEvent is one change event of the test, written as JSON (with or
// without the schema/payload wrapper) or as Avro.
type dbzEvent struct {
	op     string
	id     int64
	name   string // "" for a delete's before image without REPLICA IDENTITY FULL
	tsSecs int64  // ts_ms / 1000 from the base
	raw    string // set for events that are not changes (truncate, heartbeat, tombstone, malformed)
}

var dbzBase = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// dbzScenario is the events in arrival order, each key's on one shard (its
// partition key), and the state they must leave.
func dbzScenario() (events []dbzEvent, live map[int64]string, deleted map[int64]bool) {
	events = []dbzEvent{
		// 1: created, updated, deleted; then an older update arrives: stays deleted.
		{op: "c", id: 1, name: "ann", tsSecs: 1}, {op: "u", id: 1, name: "anna", tsSecs: 2},
		{op: "d", id: 1, tsSecs: 3}, {op: "u", id: 1, name: "stale", tsSecs: 2},
		// 2: an older update after a newer one changes nothing.
		{op: "c", id: 2, name: "bob", tsSecs: 1}, {op: "u", id: 2, name: "bobby", tsSecs: 3}, {op: "u", id: 2, name: "old", tsSecs: 2},
		// 3: a snapshot read.
		{op: "r", id: 3, name: "cat", tsSecs: 1},
		// 4: the delete arrives before the (older) create: a tombstone it cannot pass.
		{op: "d", id: 4, tsSecs: 5}, {op: "c", id: 4, name: "dan", tsSecs: 4},
		// 5: deleted, then created again later.
		{op: "c", id: 5, name: "eve", tsSecs: 1}, {op: "d", id: 5, tsSecs: 2}, {op: "c", id: 5, name: "eva", tsSecs: 3},
		// No changes: skipped and counted, or a dead letter.
		{op: "t", id: 6, tsSecs: 6}, {raw: "heartbeat", id: 6}, {raw: "tombstone", id: 6},
		{raw: "malformed", id: 7},
	}
	return events, map[int64]string{2: "bobby", 3: "cat", 5: "eva"}, map[int64]bool{1: true, 4: true}
}

func (ev dbzEvent) json(wrapped bool) []byte {
	ts := dbzBase.Add(time.Duration(ev.tsSecs) * time.Second).UnixMilli()
	var payload any
	switch ev.raw {
	case "heartbeat":
		payload = map[string]any{"ts_ms": ts}
	case "tombstone":
		payload = nil
	case "malformed":
		payload = map[string]any{"op": "u", "before": nil, "after": nil, "ts_ms": ts}
	default:
		row := map[string]any{"id": ev.id, "name": ev.name}
		if ev.name == "" {
			row["name"] = nil
		}
		e := map[string]any{"op": ev.op, "before": nil, "after": nil, "ts_ms": ts, "source": map[string]any{"connector": "postgresql", "lsn": ts}}
		switch ev.op {
		case "d":
			e["before"] = row
		case "u":
			e["before"], e["after"] = map[string]any{"id": ev.id, "name": nil}, row
		case "t":
		default:
			e["after"] = row
		}
		payload = e
	}
	if wrapped {
		payload = map[string]any{"schema": map[string]any{"type": "struct", "name": "dbserver1.public.users.Envelope"}, "payload": payload}
	}
	b, _ := json.Marshal(payload)
	return b
}

// avro encodes the event in the Confluent wire format with schema id 1; a
// tombstone is an empty record and a heartbeat has no Avro form here (both
// are sent as JSON null, which is not Avro: they are left out).
func (ev dbzEvent) avro(t *testing.T, codec *goavro.Codec) []byte {
	t.Helper()
	ts := dbzBase.Add(time.Duration(ev.tsSecs) * time.Second).UnixMilli()
	row := func() any {
		name := goavro.Union("string", ev.name)
		if ev.name == "" {
			name = goavro.Union("null", nil)
		}
		return goavro.Union("dbserver1.public.users.Value", map[string]any{"id": ev.id, "name": name})
	}
	e := map[string]any{
		"before": goavro.Union("null", nil), "after": goavro.Union("null", nil), "op": ev.op,
		"source": map[string]any{"connector": "postgresql", "lsn": goavro.Union("long", ts)},
		"ts_ms":  goavro.Union("long", ts),
	}
	switch {
	case ev.raw == "malformed":
		e["op"] = "u"
	case ev.op == "d":
		e["before"] = row()
	case ev.op == "t":
	default:
		e["after"] = row()
	}
	body, err := codec.BinaryFromNative(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0, 0, 0, 0, 1}, body...)
}

// TestDebeziumChanges: Debezium change events of one table, as JSON (every
// other event with Kafka Connect's schema/payload wrapper) and as Avro
// envelopes through a schema registry, each stream read by a worker into its
// own keyed table. Creates, snapshot reads, updates and deletes apply by
// ts_ms: a delete followed by an older update leaves the key deleted, a
// delete that arrives before an older create leaves a tombstone, and the
// live view holds exactly the live keys. Truncates, heartbeats and
// tombstones change nothing and are counted; a malformed envelope is a
// schema_error dead letter.
func TestDebeziumChanges(t *testing.T) {
	t.Parallel()
	e := newPGEnv(t, 2)
	codec, err := goavro.NewCodec(debeziumEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/schemas/ids/1" {
			http.Error(w, `{"error_code":40403,"message":"Schema not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(map[string]string{"schema": debeziumEnvelope})
	}))
	t.Cleanup(registry.Close)
	avroARN := envtest.CreateStream(t, e.kc, "users-avro", 2)

	events, live, deleted := dbzScenario()
	var jsonData, avroData [][]byte
	var jsonKeys, avroKeys []string
	for i, ev := range events {
		pk := fmt.Sprintf("k%d", ev.id)
		jsonData, jsonKeys = append(jsonData, ev.json(i%2 == 1)), append(jsonKeys, pk)
		if ev.raw == "heartbeat" || ev.raw == "tombstone" {
			continue
		}
		avroData, avroKeys = append(avroData, ev.avro(t, codec)), append(avroKeys, pk)
	}
	e.put(jsonData, jsonKeys)
	stream := e.stream
	e.stream = "users-avro"
	e.put(avroData, avroKeys)
	e.stream = stream

	const fields = `{name: id, type: int, key: true}, {name: name, type: "optional[str]"}, {name: ts, type: datetime, ref: $ts_ms}`
	body := fmt.Sprintf(`
sources:
  - name: users_json
    kinesis: {stream_arn: %s, init_position: trim_horizon, format: json}
  - name: users_avro
    kinesis: {stream_arn: %s, init_position: trim_horizon, format: {avro: {registry: {url: %s}}}}
datasets:
  - {name: users_json, source: users_json, cdc: debezium, timestamp: ts, sink: pg_json, fields: [%s]}
  - {name: users_avro, source: users_avro, cdc: debezium, timestamp: ts, sink: pg_avro, fields: [%s]}
sinks:
  - {name: pg_json, postgres: {dsn: "${PG_DSN}", table: users_json, create_table: true}}
  - {name: pg_avro, postgres: {dsn: "${PG_DSN}", table: users_avro, create_table: true}}
dead_letter:
  postgres: {dsn: "${PG_DSN}", table: kinesis_ingest_dead_letters}
consumer:
  application: users-cdc
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`, e.arn, avroARN, registry.URL, fields, fields)
	path := filepath.Join(e.dir, "debezium.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	w := e.start(path, "w1")
	addr := w.metricsAddr()
	waitFor(t, 60*time.Second, "every event of both streams", func() bool {
		m := scrape(t, addr)
		changes := metricValue(m, `kinesis_ingest_sink_changes_total{`)
		dl := metricValue(m, `kinesis_ingest_dead_letters_total{`)
		// 13 changes and 1 malformed event per stream.
		return changes >= 26 && dl >= 2
	})
	m := scrape(t, addr)
	w.stop(30 * time.Second)

	for _, table := range []string{"users_json", "users_avro"} {
		for id, name := range live {
			if n := e.mustQuery(fmt.Sprintf("SELECT count(*) FROM %s_live WHERE id = %d AND name = '%s'", table, id, name)); n != 1 {
				t.Errorf("%s: key %d is not live with name %q", table, id, name)
			}
		}
		for id := range deleted {
			if n := e.mustQuery(fmt.Sprintf("SELECT count(*) FROM %s WHERE id = %d AND _deleted_at IS NOT NULL", table, id)); n != 1 {
				t.Errorf("%s: key %d is not a tombstone", table, id)
			}
		}
		if n := e.mustQuery("SELECT count(*) FROM " + table + "_live"); n != int64(len(live)) {
			t.Errorf("%s_live has %d rows, want %d", table, n, len(live))
		}
		if n := e.mustQuery("SELECT count(*) FROM " + table); n != int64(len(live)+len(deleted)) {
			t.Errorf("%s has %d rows, want %d live and %d tombstones", table, n, len(live), len(deleted))
		}
		if n := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters WHERE dataset = '" + table + "' AND reason = 'schema_error' AND error LIKE 'after: not a Debezium change event%'"); n != 1 {
			t.Errorf("%s: %d schema_error dead letters for the malformed envelope, want 1", table, n)
		}
	}
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{`kinesis_ingest_cdc_events_skipped_total{dataset="users_json",event="truncate"}`, 1},
		{`kinesis_ingest_cdc_events_skipped_total{dataset="users_json",event="heartbeat"}`, 1},
		{`kinesis_ingest_cdc_events_skipped_total{dataset="users_json",event="tombstone"}`, 1},
		{`kinesis_ingest_cdc_events_skipped_total{dataset="users_avro",event="truncate"}`, 1},
		// How many deleted depends on batching (a key's changes in one batch
		// collapse to the newest): only the total is fixed.
		{`kinesis_ingest_sink_changes_total{result="deleted",sink="pg_avro"}` + "|" + `kinesis_ingest_sink_changes_total{result="older",sink="pg_avro"}` + "|" + `kinesis_ingest_sink_changes_total{result="upserted",sink="pg_avro"}`, 13},
	} {
		var got float64
		for _, name := range strings.Split(c.metric, "|") {
			got += metricValue(m, name)
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.metric, got, c.want)
		}
	}
}
