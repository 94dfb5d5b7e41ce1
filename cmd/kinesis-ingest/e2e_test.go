package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// orders makes n records with ids from..from+n. When withBad, every tenth is
// bad in one of five ways; want maps the partition key of each bad record to the
// dead-letter reason it must get.
func orders(from, n int, withBad bool) (data [][]byte, keys []string, want map[string]string) {
	want = map[string]string{}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		key := "k-" + strconv.Itoa(i)
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		rec := fmt.Sprintf(`{"id":%d,"amount":%d.25,"ts":%q,"note":null}`, i, i, ts)
		if withBad && i%10 == 9 {
			switch (i / 10) % 5 {
			case 0:
				rec, want[key] = fmt.Sprintf(`{"id":%d,"amount":1.5,`, i), "decode_error"
			case 1:
				rec, want[key] = fmt.Sprintf(`{"id":%d,"ts":%q}`, i, ts), "schema_error"
			case 2:
				rec, want[key] = fmt.Sprintf(`{"id":%d,"amount":"12.50","ts":%q}`, i, ts), "schema_error"
			case 3:
				rec, want[key] = fmt.Sprintf(`{"id":"%d","amount":1.5,"ts":%q}`, i, ts), "schema_error"
			case 4:
				rec, want[key] = "\xff\xfe not json at all", "decode_error"
			}
		}
		data = append(data, []byte(rec))
		keys = append(keys, key)
	}
	return data, keys, want
}

func idsOf(rows []rowLine) map[int64]int {
	m := map[int64]int{}
	for _, r := range rows {
		m[r.ID]++
	}
	return m
}

// missing lists the good ids in [from, from+n) that have no row.
func missing(ids map[int64]int, from, n int, want map[string]string) []int {
	var out []int
	for i := from; i < from+n; i++ {
		if _, bad := want["k-"+strconv.Itoa(i)]; bad {
			continue
		}
		if ids[int64(i)] == 0 {
			out = append(out, i)
		}
	}
	return out
}

func TestIngestRowsAndDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	const n = 2000
	data, keys, want := orders(0, n, true)
	lastSeq := e.put(data, keys)
	if len(lastSeq) != 4 {
		t.Fatalf("records landed on %d shards, want 4", len(lastSeq))
	}

	w := e.start(e.config("trim_horizon"), "w1")
	addr := w.metricsAddr()
	waitFor(t, 90*time.Second, "every record as a row or a dead letter", func() bool {
		return len(e.rows())+len(e.letters()) >= n
	})

	rows := e.rows()
	ids := idsOf(rows)
	if m := missing(ids, 0, n, want); len(m) > 0 {
		t.Fatalf("%d good records have no row, e.g. %v", len(m), m[:min(5, len(m))])
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("id %d written %d times without any fault", id, c)
		}
	}
	if len(rows) != n-len(want) {
		t.Errorf("%d rows, want %d", len(rows), n-len(want))
	}
	for _, r := range rows {
		if r.Amount != float64(r.ID)+0.25 || r.Shard == "" || r.Sequence == "" {
			t.Fatalf("row %+v: wrong amount or missing origin", r)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z", r.TS); err != nil {
			t.Fatalf("row %d: ts %q is not RFC 3339 UTC with microseconds", r.ID, r.TS)
		}
	}

	letters := e.letters()
	got := map[string]letterLine{}
	for _, l := range letters {
		got[l.PartitionKey] = l
	}
	if len(letters) != len(want) {
		t.Errorf("%d dead letters, want %d", len(letters), len(want))
	}
	for key, reason := range want {
		l, ok := got[key]
		if !ok {
			t.Errorf("bad record %s has no dead letter", key)
			continue
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(key, "k-"))
		if l.Reason != reason {
			t.Errorf("%s: reason %q, want %q (error %q)", key, l.Reason, reason, l.Error)
		}
		if string(l.Data) != string(data[i]) {
			t.Errorf("%s: data %q, want the raw record %q", key, l.Data, data[i])
		}
		if l.Error == "" || l.ShardID == "" || l.SequenceNumber == "" || l.ArrivalTime == "" || l.StreamARN != e.arn || l.Source != "orders" {
			t.Errorf("%s: dead letter lacks its origin or error: %+v", key, l)
		}
	}
	// The reasons name the field that was wrong.
	for key, l := range got {
		i, _ := strconv.Atoi(strings.TrimPrefix(key, "k-"))
		switch (i / 10) % 5 {
		case 1:
			if !strings.Contains(l.Error, "amount") {
				t.Errorf("%s: error %q does not name the missing field amount", key, l.Error)
			}
		case 3:
			if !strings.Contains(l.Error, "id") {
				t.Errorf("%s: error %q does not name the field id", key, l.Error)
			}
		}
	}

	// The lease table's checkpoints cover every record.
	waitFor(t, 30*time.Second, "checkpoints at the last sequence number of every shard", func() bool {
		cps := e.checkpoints()
		for shard, seq := range lastSeq {
			if cps[shard].Checkpoint != seq {
				return false
			}
		}
		return true
	})

	m := scrape(t, addr)
	for _, want := range []string{
		`kinesis_ingest_rows_written_total{dataset="orders",sink="orders_file"} 1800`,
		`kinesis_ingest_dead_letters_total{reason="decode_error",source="orders"} 80`,
		`kinesis_ingest_dead_letters_total{reason="schema_error",source="orders"} 120`,
		`kinesis_ingest_leases_held{source="orders"} 4`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var received float64
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "kinesis_ingest_records_received_total{") {
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			received += v
		}
	}
	if received != n {
		t.Errorf("records_received_total sums to %v, want %d", received, n)
	}
	if !regexp.MustCompile(`kinesis_ingest_millis_behind_latest\{shard="shardId-\d+",source="orders"\}`).MatchString(m) {
		t.Errorf("metrics lack millis_behind_latest per shard")
	}

	w.stop(30 * time.Second)
	for shard, l := range e.checkpoints() {
		if l.Owner != "" {
			t.Errorf("shard %s still leased to %q after a graceful stop", shard, l.Owner)
		}
	}
	logText, _ := os.ReadFile(w.log)
	if strings.Contains(string(logText)+m, "secret-must-not-leak") {
		t.Errorf("the AWS secret key reached the logs or metrics")
	}
}

func TestStopAndRestartMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfg := e.config("trim_horizon")
	data, keys, _ := orders(0, 1000, false)
	e.put(data, keys)

	w1 := e.start(cfg, "first")
	waitFor(t, 60*time.Second, "some rows", func() bool { return len(e.rows()) >= 200 })
	w1.stop(30 * time.Second)
	atStop := e.checkpoints()
	firstRun := len(e.rows())

	data, keys, _ = orders(1000, 1000, false)
	e.put(data, keys)
	e.start(cfg, "second")
	waitFor(t, 90*time.Second, "all 2000 rows", func() bool { return len(idsOf(e.rows())) >= 2000 })

	rows := e.rows()
	ids := idsOf(rows)
	if m := missing(ids, 0, 2000, nil); len(m) > 0 {
		t.Fatalf("%d records lost across the restart, e.g. %v", len(m), m[:min(5, len(m))])
	}
	for _, r := range rows {
		if !strings.Contains(r.File, "second") {
			continue
		}
		if cp := atStop[r.Shard].Checkpoint; cp != "" && !seqLess(cp, r.Sequence) {
			t.Errorf("row %d (seq %s) re-read after restart although shard %s was checkpointed at %s", r.ID, r.Sequence, r.Shard, cp)
		}
	}
	for id, c := range ids {
		if c > 1 {
			t.Errorf("id %d written %d times across a graceful restart", id, c)
		}
	}
	t.Logf("first run wrote %d rows before its graceful stop", firstRun)
}

func TestTwoWorkersSplitShardsAndSurviveKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfg := e.config("trim_horizon")
	w1 := e.start(cfg, "w1")
	w2 := e.start(cfg, "w2")

	owners := func() map[string]int {
		m := map[string]int{}
		for _, l := range e.checkpoints() {
			if l.Owner != "" && l.LeaseTimeout.After(time.Now()) {
				m[l.Owner]++
			}
		}
		return m
	}
	waitFor(t, 60*time.Second, "the 4 shards split 2/2", func() bool {
		o := owners()
		return o["w1"] == 2 && o["w2"] == 2
	})

	// Half the records before the kill, half after: w1's shards then hold
	// records only a takeover can deliver.
	const n = 2000
	data, keys, _ := orders(0, n/2, false)
	e.put(data, keys)
	waitFor(t, 60*time.Second, "rows from both workers", func() bool {
		var a, b bool
		for _, r := range e.rows() {
			a = a || strings.Contains(r.File, "-w1-")
			b = b || strings.Contains(r.File, "-w2-")
		}
		return a && b
	})
	w1.kill()
	atKill := e.checkpoints() // w1 is dead: its checkpoints are final
	data, keys, _ = orders(n/2, n/2, false)
	e.put(data, keys)

	waitFor(t, 120*time.Second, "w2 to finish every record", func() bool {
		return len(missing(idsOf(e.rows()), 0, n, nil)) == 0
	})
	byW1AfterKill := 0
	for _, r := range e.rows() {
		if r.ID >= n/2 && strings.Contains(r.File, "-w1-") {
			byW1AfterKill++
		}
	}
	if byW1AfterKill > 0 {
		t.Fatalf("%d rows put after w1 was killed are in w1's files", byW1AfterKill)
	}
	o := owners()
	if o["w2"] != 4 || len(o) != 1 {
		t.Errorf("after w1 died, owners are %v, want w2 holding all 4", o)
	}
	// The takeover resumes at w1's checkpoint, not earlier: w2 re-reads at
	// most what w1 wrote after its last checkpoint (the batches in flight
	// when it died), and every duplicate is such a record.
	inFlight := map[int64]bool{}
	for _, r := range e.rows() {
		cp := atKill[r.Shard].Checkpoint
		afterCP := cp == "" || seqLess(cp, r.Sequence)
		switch {
		case strings.Contains(r.File, "-w1-") && afterCP:
			inFlight[r.ID] = true
		case strings.Contains(r.File, "-w2-") && !afterCP && atKill[r.Shard].Owner == "w1":
			t.Errorf("w2 re-read row %d (seq %s) of shard %s at or before w1's checkpoint %s: the takeover did not resume at the checkpoint", r.ID, r.Sequence, r.Shard, cp)
		}
	}
	ids := idsOf(e.rows())
	dups := 0
	for id, c := range ids {
		if c > 1 {
			dups++
			if !inFlight[id] {
				t.Errorf("id %d written %d times, but it was not in a batch w1 had in flight (after its last checkpoint)", id, c)
			}
		}
	}
	t.Logf("%d ids of %d were written twice, all from the %d rows w1 wrote after its last checkpoint (its batches in flight, re-read by w2)", dups, n, len(inFlight))
	w2.stop(30 * time.Second)
}
