package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// routingTemplate feeds one source into two datasets, each with its own where
// and its own file sink; records that neither takes are dead-lettered.
const routingTemplate = `
sources:
  - name: orders
    kinesis:
      stream_arn: %[1]s
      init_position: trim_horizon
datasets:
  - name: de_orders
    source: orders
    where: 'country == "DE"'
    fields: &fields
      - {name: id, type: int}
      - {name: amount, type: float}
      - {name: ts, type: datetime}
      - {name: country, type: str}
    sink: de_file
  - name: big_orders
    source: orders
    where: amount >= 100
    fields: *fields
    sink: big_file
sinks:
  - name: de_file
    file: {path: %[2]s}
  - name: big_file
    file: {path: %[3]s}
dead_letter:
  file: {path: %[4]s}
  unrouted: true
consumer:
  application: %[5]s
  worker_id: ${WORKER_ID}
  shard_sync_interval: 500ms
  lease_duration: 4s
  lease_refresh: 1s
  idle_between_reads: 100ms
  max_records: 100
metrics:
  listen: 127.0.0.1:0
errors:
  listen: 127.0.0.1:0
`

type routedRow struct {
	ID      int64   `json:"id"`
	Amount  float64 `json:"amount"`
	Country string  `json:"country"`
}

type routedLetter struct {
	PartitionKey string `json:"partition_key"`
	Dataset      string `json:"dataset"`
	Reason       string `json:"reason"`
	Error        string `json:"error"`
}

// routingRecords makes n orders from DE, FR and US with amounts from 0 to
// 249, and two kinds of bad record: an amount that is not a number from FR
// (big_orders cannot decide its where: a schema_error for big_orders only;
// de_orders does not take it), and a bad ts from DE with a small amount
// (de_orders takes it and cannot validate it; big_orders does not take it, so
// its bad field does not matter there). want maps each partition key to the
// outcomes "de", "big", "no_route" or "schema_error:<dataset>".
func routingRecords(n int) (data [][]byte, keys []string, want map[string][]string) {
	want = map[string][]string{}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		key := "k-" + strconv.Itoa(i)
		country := []string{"DE", "FR", "US"}[i%3]
		amount := (i * 37) % 250
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		rec := fmt.Sprintf(`{"id":%d,"amount":%d,"ts":%q,"country":%q}`, i, amount, ts, country)
		var out []string
		switch {
		case i%50 == 7:
			rec = fmt.Sprintf(`{"id":%d,"amount":"lots","ts":%q,"country":"FR"}`, i, ts)
			out = []string{"schema_error:big_orders"}
		case i%50 == 13:
			rec = fmt.Sprintf(`{"id":%d,"amount":5,"ts":"yesterday","country":"DE"}`, i)
			out = []string{"schema_error:de_orders"}
		default:
			if country == "DE" {
				out = append(out, "de")
			}
			if amount >= 100 {
				out = append(out, "big")
			}
			if len(out) == 0 {
				out = []string{"no_route"}
			}
		}
		data, keys, want[key] = append(data, []byte(rec)), append(keys, key), out
	}
	return data, keys, want
}

func TestRouteOneStreamIntoTwoDatasets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	deDir, bigDir := filepath.Join(e.dir, "de"), filepath.Join(e.dir, "big")
	cfgPath := filepath.Join(e.dir, "routing.yaml")
	body := fmt.Sprintf(routingTemplate, e.arn, deDir, bigDir, e.lettersDir(), e.table)
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}

	const n = 300
	data, keys, want := routingRecords(n)
	if len(e.put(data, keys)) != 2 {
		t.Fatal("records did not land on both shards")
	}
	outcomes := 0
	counts := map[string]int{}
	for _, outs := range want {
		outcomes += len(outs)
		for _, o := range outs {
			counts[o]++
		}
	}
	if counts["de"] == 0 || counts["big"] == 0 || counts["no_route"] == 0 {
		t.Fatalf("test data lacks a case: %v", counts)
	}
	both := 0
	for _, outs := range want {
		if len(outs) == 2 {
			both++
		}
	}
	if both == 0 {
		t.Fatal("test data has no record for both datasets")
	}

	w := e.start(cfgPath, "w1")
	addr := w.metricsAddr()
	deRows := func() []routedRow { return readLines(t, deDir, func(*routedRow, string) {}) }
	bigRows := func() []routedRow { return readLines(t, bigDir, func(*routedRow, string) {}) }
	letters := func() []routedLetter { return readLines(t, e.lettersDir(), func(*routedLetter, string) {}) }
	waitFor(t, 90*time.Second, fmt.Sprintf("%d rows and dead letters", outcomes), func() bool {
		return len(deRows())+len(bigRows())+len(letters()) >= outcomes
	})

	got := map[string][]string{}
	for _, r := range deRows() {
		k := "k-" + strconv.FormatInt(r.ID, 10)
		got[k] = append(got[k], "de")
		if r.Country != "DE" {
			t.Errorf("de_orders has %+v", r)
		}
	}
	for _, r := range bigRows() {
		k := "k-" + strconv.FormatInt(r.ID, 10)
		got[k] = append(got[k], "big")
		if r.Amount < 100 {
			t.Errorf("big_orders has %+v", r)
		}
	}
	for _, l := range letters() {
		switch l.Reason {
		case "no_route":
			if l.Dataset != "" {
				t.Errorf("%s: no_route dead letter names dataset %q", l.PartitionKey, l.Dataset)
			}
			got[l.PartitionKey] = append(got[l.PartitionKey], "no_route")
		case "schema_error":
			got[l.PartitionKey] = append(got[l.PartitionKey], "schema_error:"+l.Dataset)
			i, _ := strconv.Atoi(strings.TrimPrefix(l.PartitionKey, "k-"))
			if wantErr := map[int]string{7: "where: amount: want float", 13: "ts: "}[i%50]; !strings.HasPrefix(l.Error, wantErr) {
				t.Errorf("%s: error %q, want it to start with %q", l.PartitionKey, l.Error, wantErr)
			}
		default:
			t.Errorf("%s: unexpected dead letter %+v", l.PartitionKey, l)
		}
	}
	for i := range n {
		k := "k-" + strconv.Itoa(i)
		g := append([]string(nil), got[k]...)
		sort.Strings(g)
		wt := append([]string(nil), want[k]...)
		sort.Strings(wt)
		if strings.Join(g, ",") != strings.Join(wt, ",") {
			t.Errorf("%s (%s): landed as [%s], want [%s]", k, data[i], strings.Join(g, ","), strings.Join(wt, ","))
		}
	}

	// Counters move just after the writes they count: poll a little.
	var m string
	lacks := func(lines []string) (out []string) {
		for _, line := range lines {
			if !strings.Contains(m, line+"\n") {
				out = append(out, line)
			}
		}
		return out
	}
	wantMetrics := []string{
		fmt.Sprintf(`kinesis_ingest_rows_written_total{dataset="de_orders",sink="de_file"} %d`, counts["de"]),
		fmt.Sprintf(`kinesis_ingest_rows_written_total{dataset="big_orders",sink="big_file"} %d`, counts["big"]),
		fmt.Sprintf(`kinesis_ingest_records_unrouted_total{source="orders"} %d`, counts["no_route"]),
		fmt.Sprintf(`kinesis_ingest_dead_letters_total{reason="no_route",source="orders"} %d`, counts["no_route"]),
		fmt.Sprintf(`kinesis_ingest_dead_letters_total{reason="schema_error",source="orders"} %d`,
			counts["schema_error:de_orders"]+counts["schema_error:big_orders"]),
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		m = scrape(t, addr)
		if len(lacks(wantMetrics)) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, line := range lacks(wantMetrics) {
		t.Errorf("metrics lack %q", line)
	}
	t.Logf("%d records: %v (%d for both datasets)", n, counts, both)
	w.stop(30 * time.Second)
}

// With the default dead_letter.unrouted: false, a record no dataset takes is
// counted (records_unrouted_total), not dead-lettered, and the shard's
// checkpoint moves past it: here the last records of both shards go nowhere,
// and each shard's checkpoint reaches the last sequence number put.
func TestUnroutedByDefaultIsCountedNotDeadLetteredAndCheckpointedPast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	deDir, bigDir := filepath.Join(e.dir, "de"), filepath.Join(e.dir, "big")
	cfgPath := filepath.Join(e.dir, "routing.yaml")
	body := fmt.Sprintf(routingTemplate, e.arn, deDir, bigDir, e.lettersDir(), e.table)
	if !strings.Contains(body, "  unrouted: true\n") {
		t.Fatal("routingTemplate has no unrouted line")
	}
	body = strings.Replace(body, "  unrouted: true\n", "", 1)
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	const routed = 50
	var data [][]byte
	var keys []string
	for i := range routed {
		data = append(data, fmt.Appendf(nil, `{"id":%d,"amount":500.5,"ts":"2026-11-01T12:00:00Z","country":"DE"}`, i))
		keys = append(keys, "r-"+strconv.Itoa(i))
	}
	e.put(data, keys)
	data, keys = nil, nil
	const unrouted = 60
	for i := range unrouted {
		data = append(data, fmt.Appendf(nil, `{"id":%d,"amount":1.5,"ts":"2026-11-01T12:00:00Z","country":"FR"}`, routed+i))
		keys = append(keys, "u-"+strconv.Itoa(i))
	}
	last := e.put(data, keys)
	if len(last) != 2 {
		t.Fatalf("the unrouted records landed on %d shards, want both", len(last))
	}

	w := e.start(cfgPath, "w1")
	addr := w.metricsAddr()
	waitFor(t, 60*time.Second, "each shard checkpointed at its last (unrouted) record", func() bool {
		cps := e.checkpoints()
		for shard, seq := range last {
			if cps[shard].Checkpoint != seq {
				return false
			}
		}
		return true
	})
	if n := len(readLines(t, deDir, func(*routedRow, string) {})); n != routed {
		t.Errorf("%d rows in de_orders, want %d", n, routed)
	}
	if l := readLines(t, e.lettersDir(), func(*routedLetter, string) {}); len(l) != 0 {
		t.Errorf("%d dead letters with unrouted: false, want none (e.g. %+v)", len(l), l[0])
	}
	want := fmt.Sprintf(`kinesis_ingest_records_unrouted_total{source="orders"} %d`, unrouted)
	var m string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if m = scrape(t, addr); strings.Contains(m, want+"\n") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(m, want+"\n") {
		t.Errorf("metrics lack %q", want)
	}
	w.stop(30 * time.Second)
}
