package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ddbChange is one record of Kinesis Data Streams for DynamoDB, shaped as
// AWS documents it for the Music table of its examples (key Artist and
// SongTitle): the test writes it as JSON, by hand, not with the code under
// test.
type ddbChange struct {
	event    string // INSERT, MODIFY, REMOVE
	artist   string
	song     string
	at       time.Time
	micros   bool           // MICROSECOND precision (else MILLISECOND)
	noPrec   bool           // no ApproximateCreationDateTimePrecision: the magnitude tells
	image    map[string]any // typed attributes beside the key (NewImage, or OldImage of a REMOVE)
	eventID  string         // "" makes one; a repeat delivery shares its original's
	envelope func(map[string]any)
}

func (c ddbChange) json(t *testing.T, seq int) string {
	t.Helper()
	keys := map[string]any{"Artist": map[string]any{"S": c.artist}, "SongTitle": map[string]any{"S": c.song}}
	item := map[string]any{}
	for k, v := range keys {
		item[k] = v
	}
	for k, v := range c.image {
		item[k] = v
	}
	ts, prec := c.at.UnixMilli(), "MILLISECOND"
	if c.micros {
		ts, prec = c.at.UnixMicro(), "MICROSECOND"
	}
	d := map[string]any{"ApproximateCreationDateTime": ts, "ApproximateCreationDateTimePrecision": prec, "Keys": keys, "SizeBytes": 100 + seq}
	if c.noPrec {
		delete(d, "ApproximateCreationDateTimePrecision")
	}
	if c.event == "REMOVE" {
		d["OldImage"] = item
	} else {
		d["NewImage"] = item
	}
	id := c.eventID
	if id == "" {
		id = fmt.Sprintf("%08d-4d3f-8e6a-0000000000%02d", seq, seq)
	}
	rec := map[string]any{
		"awsRegion": "us-east-1", "eventID": id, "eventName": c.event, "userIdentity": nil,
		"recordFormat": "application/json", "tableName": "Music", "dynamodb": d, "eventSource": "aws:dynamodb",
	}
	if c.envelope != nil {
		c.envelope(rec)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// putWithCLI writes records (data, partition key) to the stream with the
// AWS CLI's put-records, in order (a key's records share a partition key,
// so a shard holds them in this order).
func (e *env) putWithCLI(records [][2]string) {
	e.t.Helper()
	aws, err := exec.LookPath("aws")
	if err != nil {
		e.t.Fatalf("the AWS CLI writes this test's records, and there is none on PATH: %v", err)
	}
	entries := make([]map[string]string, len(records))
	for i, r := range records {
		// The CLI (v1) sends a blob given as text as those bytes.
		entries[i] = map[string]string{"Data": r[0], "PartitionKey": r[1]}
	}
	body, _ := json.Marshal(entries)
	file := filepath.Join(e.dir, "put-records.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.CommandContext(e.t.Context(), aws, "--endpoint-url", e.kin.Endpoint, "--region", "us-east-1", "--output", "json",
		"kinesis", "put-records", "--stream-name", e.stream, "--records", "file://"+file)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=000000000000", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_CLI_AUTO_PROMPT=off")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		e.t.Fatalf("aws kinesis put-records: %v: %s", err, stderr)
	}
	var res struct{ FailedRecordCount int }
	if err := json.Unmarshal(out, &res); err != nil || res.FailedRecordCount != 0 {
		e.t.Fatalf("aws kinesis put-records: %d failed (%v): %s", res.FailedRecordCount, err, out)
	}
}

// TestDynamoDBChanges: a DynamoDB table's changes as Kinesis Data Streams
// for DynamoDB writes them, put on the stream by the AWS CLI and read by a
// worker into a keyed PostgreSQL table. INSERT and MODIFY upsert, REMOVE
// deletes, by ApproximateCreationDateTime at either precision: a repeated
// MODIFY and older changes that arrive late change nothing, a REMOVE that
// arrives before the INSERT it follows leaves a tombstone, and the table
// ends holding the table's current state, every DynamoDB type in the
// field it fits. Records whose image does not fit the dataset, that have
// no eventName or are not JSON are dead letters with their reasons;
// nothing is lost.
func TestDynamoDBChanges(t *testing.T) {
	t.Parallel()
	e := newPGEnv(t, 2)
	base := time.Date(2026, 3, 10, 18, 50, 23, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	const callMe, happy, partiql, shadow = "Call Me Today", "Happy Day", "PartiQL Rocks", "Scared of My Shadow"
	const noOne, acme = "No One You Know", "Acme Band"
	s := func(v string) map[string]any { return map[string]any{"S": v} }
	n := func(v string) map[string]any { return map[string]any{"N": v} }
	rich := map[string]any{
		"AlbumTitle": s("Louder Than Ever"), "Awards": n("2"), "Price": n("1.99"),
		"Genres":   map[string]any{"SS": []string{"Country", "Rock"}},
		"Ratings":  map[string]any{"NS": []string{"4", "5"}},
		"Cover":    map[string]any{"B": "iVBORw0KGgo="}, // a PNG's signature
		"Explicit": map[string]any{"BOOL": false},
		"Notes":    map[string]any{"NULL": true},
		"Label":    map[string]any{"M": map[string]any{"Name": s("Dynamo Records"), "Address": map[string]any{"M": map[string]any{"City": s("Nashville")}}}},
		"Tracks": map[string]any{"L": []any{
			map[string]any{"M": map[string]any{"No": n("1"), "Title": s("Call Me Today")}},
			map[string]any{"M": map[string]any{"No": n("2"), "Title": s("Louder")}}}},
	}
	changes := []ddbChange{
		// Call Me Today: inserted, modified, the MODIFY delivered twice, then
		// an older MODIFY arrives: the newest stays.
		{event: "INSERT", artist: noOne, song: callMe, at: at(1000), image: map[string]any{"AlbumTitle": s("Somewhat Famous"), "Awards": n("1")}},
		{event: "MODIFY", artist: noOne, song: callMe, at: at(3000), image: rich, eventID: "repeated-modify"},
		{event: "MODIFY", artist: noOne, song: callMe, at: at(3000), image: rich, eventID: "repeated-modify"},
		{event: "MODIFY", artist: noOne, song: callMe, at: at(2000), image: map[string]any{"AlbumTitle": s("stale"), "Awards": n("99")}},
		// Happy Day: inserted, removed, then an older MODIFY: stays removed.
		{event: "INSERT", artist: acme, song: happy, at: at(1000), image: map[string]any{"AlbumTitle": s("Songs About Life"), "Awards": n("10")}},
		{event: "REMOVE", artist: acme, song: happy, at: at(3000), image: map[string]any{"AlbumTitle": s("Songs About Life"), "Awards": n("10")}},
		{event: "MODIFY", artist: acme, song: happy, at: at(2000), image: map[string]any{"AlbumTitle": s("stale"), "Awards": n("11")}},
		// PartiQL Rocks: the REMOVE arrives before the older INSERT: a tombstone.
		{event: "REMOVE", artist: acme, song: partiql, at: at(5000), image: map[string]any{"AlbumTitle": s("Another Album Title"), "Awards": n("8")}},
		{event: "INSERT", artist: acme, song: partiql, at: at(4000), image: map[string]any{"AlbumTitle": s("Another Album Title"), "Awards": n("8")}},
		// Scared of My Shadow: microsecond precision, named and by magnitude,
		// then a millisecond one 1µs older than the INSERT: the MODIFY a
		// microsecond after the INSERT wins.
		{event: "INSERT", artist: noOne, song: shadow, at: at(6000).Add(time.Microsecond), micros: true, image: map[string]any{"AlbumTitle": s("Blue Sky Blues"), "Awards": n("0")}},
		{event: "MODIFY", artist: noOne, song: shadow, at: at(6000).Add(2 * time.Microsecond), micros: true, noPrec: true, image: map[string]any{"AlbumTitle": s("Blue Sky Blues"), "Awards": n("3")}},
		{event: "MODIFY", artist: noOne, song: shadow, at: at(6000), image: map[string]any{"AlbumTitle": s("stale"), "Awards": n("7")}},
	}
	const good = 12
	// Hostile records: an N that is no int, a string set into the decimal,
	// no eventName, an image that is not typed, and not JSON.
	hostile := []ddbChange{
		{event: "INSERT", artist: acme, song: "Fractional", at: at(7000), image: map[string]any{"AlbumTitle": s("Halves"), "Awards": n("1.5")}},
		{event: "INSERT", artist: acme, song: "Priceless", at: at(7000), image: map[string]any{"AlbumTitle": s("Gratis"), "Awards": n("1"), "Price": map[string]any{"SS": []string{"free"}}}},
		{event: "INSERT", artist: acme, song: "Nameless", at: at(7000), envelope: func(r map[string]any) { delete(r, "eventName") }},
		{event: "INSERT", artist: acme, song: "Untyped", at: at(7000), envelope: func(r map[string]any) {
			r["dynamodb"].(map[string]any)["NewImage"] = map[string]any{"Artist": acme, "SongTitle": "Untyped"}
		}},
	}
	var recs [][2]string
	for i, c := range append(changes, hostile...) {
		recs = append(recs, [2]string{c.json(t, i), c.artist + "#" + c.song})
	}
	recs = append(recs, [2]string{`{"eventName":"INSERT","dynamodb":`, "truncated"})
	e.putWithCLI(recs)

	const fields = `
      - {name: artist, type: str, key: true, ref: Artist}
      - {name: song, type: str, key: true, ref: SongTitle}
      - {name: album, type: str, ref: AlbumTitle}
      - {name: awards, type: int, ref: Awards}
      - {name: price, type: "optional[decimal[2]]", ref: Price}
      - {name: genres, type: "optional[list[str]]", ref: Genres}
      - {name: ratings, type: "optional[list[int]]", ref: Ratings}
      - {name: cover, type: "optional[bytes]", ref: Cover}
      - {name: explicit, type: "optional[bool]", ref: Explicit}
      - {name: notes, type: "optional[str]", ref: Notes}
      - {name: city, type: "optional[str]", ref: Label.Address.City}
      - name: label
        type: optional[struct]
        ref: Label
        fields: [{name: Name, type: str}]
      - name: tracks
        type: "optional[list[struct]]"
        ref: Tracks
        fields: [{name: "No", type: int}, {name: Title, type: str}]
      - {name: event, type: str, ref: $eventName}
      - {name: ts, type: datetime, ref: $dynamodb.ApproximateCreationDateTime}`
	cfg := e.cdcConfig("music-cdc", "json", "dynamodb", fields)
	w := e.start(cfg, "w1")
	addr := w.metricsAddr()
	waitFor(t, 60*time.Second, "every record a change or a dead letter", func() bool {
		m := scrape(t, addr)
		return metricValue(m, `kinesis_ingest_sink_changes_total{`) >= good && metricValue(m, `kinesis_ingest_dead_letters_total{`) >= float64(len(hostile)+1)
	})
	m := scrape(t, addr)
	w.stop(30 * time.Second)

	if got := metricValue(m, `kinesis_ingest_sink_changes_total{`); got != good {
		t.Errorf("sink_changes_total = %v, want %d (one per change)", got, good)
	}
	live := map[string]string{
		callMe: `artist = 'No One You Know' AND album = 'Louder Than Ever' AND awards = 2 AND price = 1.99
			AND genres = '["Country","Rock"]'::jsonb AND ratings = '[4,5]'::jsonb AND cover = '\x89504e470d0a1a0a'::bytea
			AND explicit = false AND notes IS NULL AND city = 'Nashville' AND label = '{"Name":"Dynamo Records"}'::jsonb
			AND tracks = '[{"No":1,"Title":"Call Me Today"},{"No":2,"Title":"Louder"}]'::jsonb
			AND event = 'MODIFY' AND ts = '2026-03-10T18:50:26Z'`,
		shadow: `artist = 'No One You Know' AND album = 'Blue Sky Blues' AND awards = 3 AND event = 'MODIFY' AND ts = '2026-03-10T18:50:29.000002Z'`,
	}
	for song, where := range live {
		if n := e.mustQuery(fmt.Sprintf("SELECT count(*) FROM users_live WHERE song = '%s' AND %s", song, where)); n != 1 {
			t.Errorf("%q is not live as the newest change left it (%s)", song, strings.Join(strings.Fields(where), " "))
		}
	}
	for song, ts := range map[string]string{happy: "2026-03-10T18:50:26Z", partiql: "2026-03-10T18:50:28Z"} {
		if n := e.mustQuery(fmt.Sprintf("SELECT count(*) FROM users WHERE artist = 'Acme Band' AND song = '%s' AND _deleted_at IS NOT NULL AND ts = '%s'", song, ts)); n != 1 {
			t.Errorf("%q is not a tombstone of its REMOVE at %s", song, ts)
		}
	}
	if n := e.mustQuery("SELECT count(*) FROM users_live"); n != int64(len(live)) {
		t.Errorf("users_live has %d rows, want %d", n, len(live))
	}
	if n := e.mustQuery("SELECT count(*) FROM users"); n != 4 {
		t.Errorf("users has %d rows, want 2 live and 2 tombstones", n)
	}
	for _, c := range []struct{ where, what string }{
		{`dataset = 'users' AND reason = 'schema_error' AND error LIKE 'awards: want int, got number 1.5%'`, "the fractional Awards"},
		{`dataset = 'users' AND reason = 'schema_error' AND error LIKE 'price: want decimal%'`, "the string set in Price"},
		{`dataset = 'users' AND reason = 'schema_error' AND error LIKE 'eventName: not a DynamoDB change record: no eventName%'`, "the record without eventName"},
		{`dataset = 'users' AND reason = 'schema_error' AND error LIKE 'dynamodb.NewImage.Artist: not a DynamoDB change record: want a typed value%'`, "the untyped image"},
		{`reason = 'decode_error' AND partition_key = 'truncated'`, "the truncated JSON"},
	} {
		if n := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters WHERE " + c.where); n != 1 {
			t.Errorf("%d dead letters for %s (%s), want 1", n, c.what, c.where)
		}
	}
	if n := e.mustQuery("SELECT count(*) FROM kinesis_ingest_dead_letters"); n != int64(len(hostile)+1) {
		t.Errorf("%d dead letters, want %d", n, len(hostile)+1)
	}
}
