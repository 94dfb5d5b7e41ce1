package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// The default consumer settings, which the formulas are for.
var (
	pass    = config.DefaultShardSyncInterval.Seconds()  // P
	refresh = config.DefaultLeaseRefresh.Seconds()       // R
	every   = config.DefaultCheckpointInterval.Seconds() // C
)

// formula is docs/coordination.md's prediction, per second, for S shards, W
// workers, b non-empty batches per shard and second, U read units a scan.
type formula struct{ reads, scans, getItems, listShards, writes, checkpoints float64 }

func predict(s, w, b, u float64) formula {
	ckpt := b
	if every > 0 {
		ckpt = min(b, 1/every)
	}
	return formula{
		reads:       w * u / pass,
		scans:       w / pass,
		listShards:  w * math.Ceil(s/1000) / pass,
		writes:      w/pass + s/refresh + s*ckpt,
		checkpoints: s * ckpt,
	}
}

// meanMS is a sample's mean GetRecords call in milliseconds.
func meanMS(s workerSample) float64 {
	if s.getRecords == 0 {
		return 0
	}
	return 1000 * s.getRecordsSecs / s.getRecords
}

func (r *result) print(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "\n### Wide run: %d shards × %d workers, default consumer settings, %g records/s put into every shard\n\n", o.shards, o.workers, o.rate)
	if r.failure != nil {
		fmt.Fprintf(w, "**Failed** — %v. The figures below are what was measured before.\n\n", r.failure)
	}
	secs := func(d time.Duration) string {
		if d == 0 {
			return "not reached"
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	fmt.Fprintf(w, "| step | figure |\n|---|---:|\n")
	fmt.Fprintf(w, "| CreateStream of %d shards until ACTIVE | %s |\n", o.shards, secs(r.createStream))
	fmt.Fprintf(w, "| workers started → every shard leased (lease table) | %s |\n", secs(r.leased))
	fmt.Fprintf(w, "| → every lease held by a running consumer (/metrics) | %s |\n", secs(r.heldAll))
	fmt.Fprintf(w, "| → every worker at its share (%d or %d) | %s |\n", o.shards/o.workers, (o.shards+o.workers-1)/o.workers, secs(r.balanced))
	if r.balanced != 0 {
		fmt.Fprintf(w, "| leases per worker, fewest – most | %d – %d |\n", r.balancedLo, r.balancedHi)
	}
	if r.killed != "" {
		fmt.Fprintf(w, "| kill -9 of %s (holding %d) → its shards leased by the survivors (lease table) | %s |\n", r.killed, r.killedHeld, secs(r.takeoverTable))
		fmt.Fprintf(w, "| → every lease held by a survivor's consumer (/metrics) | %s |\n", secs(r.takeoverHeld))
		if r.takeoverHeld != 0 {
			fmt.Fprintf(w, "| leases per survivor, fewest – most | %d – %d |\n", r.afterLo, r.afterHi)
		}
	}
	if r.acked > 0 {
		fmt.Fprintf(w, "| records acknowledged by PutRecords (not acknowledged after 10 tries) | %d (%d) |\n", r.acked, r.failedPuts)
		fmt.Fprintf(w, "| producer stopped → every acknowledged record in the file sinks | %s |\n", secs(r.drain))
	}
	if r.counted {
		fmt.Fprintf(w, "| ids in the file sinks: distinct / **lost** / duplicates / not acknowledged | %d / **%d** / %d / %d |\n", r.distinct, r.lost, r.dupes, r.unacked)
		fmt.Fprintf(w, "| dead letters | %d |\n", r.letters)
	}
	if !r.windowDone {
		return
	}

	fmt.Fprintf(w, "\nOver a %.0f s window with records flowing (%.1f records/s acknowledged, %.2f per shard):\n\n", r.secs, r.putRate, r.putRate/float64(o.shards))
	fmt.Fprintf(w, "| process | leases | CPU, milli-CPU-s/s | anonymous RSS, MiB | file RSS, MiB | GetRecords/s | GetRecords, mean ms | batches/s | checkpoints/s |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var tot workerSample
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	for _, s := range r.samples {
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %.2f |\n", s.id, s.leases, 1000*s.cpu, mib(s.anon), mib(s.file), s.getRecords, meanMS(s), s.batches, s.checkpoints)
		tot.leases += s.leases
		tot.cpu += s.cpu
		tot.anon += s.anon
		tot.file += s.file
		tot.getRecords += s.getRecords
		tot.getRecordsSecs += s.getRecordsSecs
		tot.batches += s.batches
		tot.checkpoints += s.checkpoints
	}
	n := float64(len(r.samples))
	fmt.Fprintf(w, "| all workers | %d | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %.2f |\n", tot.leases, 1000*tot.cpu, mib(tot.anon), mib(tot.file), tot.getRecords, meanMS(tot), tot.batches, tot.checkpoints)
	fmt.Fprintf(w, "| per worker (mean) | %.1f | %.1f | %.1f | %.1f | %.2f | | %.2f | %.2f |\n", float64(tot.leases)/n, 1000*tot.cpu/n, mib(tot.anon)/n, mib(tot.file)/n, tot.getRecords/n, tot.batches/n, tot.checkpoints/n)
	fmt.Fprintf(w, "| kinesis-mock | | %.1f | | | | | | |\n", 1000*r.kinesisCPU)
	fmt.Fprintf(w, "| dynalite | | %.1f | | | | | | |\n", 1000*r.dynamoCPU)
	fmt.Fprintf(w, "| this tool (producer, proxies) | | %.1f | | | | | | |\n", 1000*r.cpu)
	// Both emulators answer on one Node.js thread: near a whole CPU they are
	// the limit, and the workers' rates are what the emulator can serve.
	for _, e := range []struct {
		name string
		cpu  float64
	}{{"kinesis-mock", r.kinesisCPU}, {"dynalite", r.dynamoCPU}} {
		if e.cpu > 0.8 {
			fmt.Fprintf(w, "\n**%s saturated**: %.0f%% of a core, and it runs on one Node.js thread; the workers' call rates and latencies above are what it could serve, not what they would do against AWS. Step down -shards.\n", e.name, 100*e.cpu)
		}
	}

	S, W := float64(o.shards), float64(o.workers)
	b := tot.batches / S
	f := predict(S, W, b, r.scanUnits)
	per := func(v float64) float64 { return v / r.secs }
	calls := func(c counts, ops ...string) float64 {
		t := 0
		for _, op := range ops {
			t += c.calls[op]
		}
		return per(float64(t))
	}
	refused := 0
	for _, v := range r.ddb.refused {
		refused += v
	}
	fmt.Fprintf(w, "\nThe lease table and Kinesis' control plane over the window, counted by proxies, beside docs/coordination.md's formulas (P = %gs, R = %gs, C = %gs; b = %.2f non-empty batches/s per shard measured; U = %.1f read units, one eventually consistent scan measured):\n\n", pass, refresh, every, b, r.scanUnits)
	fmt.Fprintf(w, "| per second, %d × %d busy | measured | formula | which |\n|---|---:|---:|---|\n", o.shards, o.workers)
	fmt.Fprintf(w, "| read units | %.2f | %.2f | W × U / P |\n", per(r.ddb.read), f.reads)
	fmt.Fprintf(w, "| scans | %.2f | %.2f | W / P |\n", calls(r.ddb, "Scan"), f.scans)
	fmt.Fprintf(w, "| GetItem | %.2f | %.2f | 0 (one per shard start) |\n", calls(r.ddb, "GetItem"), f.getItems)
	fmt.Fprintf(w, "| ListShards | %.2f | %.2f | W × ceil(S / 1000) / P |\n", calls(r.kin, "ListShards"), f.listShards)
	fmt.Fprintf(w, "| write units | %.2f | %.2f | W / P + S / R + S × min(b, 1/C) |\n", per(r.ddb.write), f.writes)
	fmt.Fprintf(w, "| of which checkpoints (the workers' checkpoints_total) | %.2f | %.2f | S × min(b, 1/C) |\n", tot.checkpoints, f.checkpoints)
	fmt.Fprintf(w, "| write calls (UpdateItem, PutItem, DeleteItem) | %.2f | | |\n", calls(r.ddb, "UpdateItem", "PutItem", "DeleteItem"))
	fmt.Fprintf(w, "| calls refused (conditional writes lost, errors) | %.2f | | |\n", per(float64(refused)))
	fmt.Fprintf(w, "| GetRecords (Kinesis) | %.2f | | |\n", calls(r.kin, "GetRecords"))

	fmt.Fprintf(w, "\n```\nraw: shards=%d workers=%d rate=%g window_s=%.3f create_stream_s=%.3f leased_s=%.3f held_s=%.3f balanced_s=%.3f\n",
		o.shards, o.workers, o.rate, r.secs, r.createStream.Seconds(), r.leased.Seconds(), r.heldAll.Seconds(), r.balanced.Seconds())
	fmt.Fprintf(w, "raw: killed=%s killed_held=%d takeover_table_s=%.3f takeover_held_s=%.3f drain_s=%.3f acked=%d failed_puts=%d distinct=%d lost=%d dupes=%d unacked=%d letters=%d\n",
		r.killed, r.killedHeld, r.takeoverTable.Seconds(), r.takeoverHeld.Seconds(), r.drain.Seconds(), r.acked, r.failedPuts, r.distinct, r.lost, r.dupes, r.unacked, r.letters)
	fmt.Fprintf(w, "raw: put_rate=%.3f kinesis_mock_cpu=%.4f dynalite_cpu=%.4f tool_cpu=%.4f scan_units=%.2f read_units_in_window=%.2f write_units_in_window=%.2f\n",
		r.putRate, r.kinesisCPU, r.dynamoCPU, r.cpu, r.scanUnits, r.ddb.read, r.ddb.write)
	fmt.Fprintf(w, "raw: dynamodb_calls=%v dynamodb_refused=%v kinesis_calls=%v kinesis_refused=%v\n", r.ddb.calls, r.ddb.refused, r.kin.calls, r.kin.refused)
	for _, s := range r.samples {
		fmt.Fprintf(w, "raw: worker=%s leases=%d cpu=%.4f anon=%d file=%d get_records=%.3f get_records_seconds=%.4f batches=%.3f checkpoints=%.3f\n", s.id, s.leases, s.cpu, s.anon, s.file, s.getRecords, s.getRecordsSecs, s.batches, s.checkpoints)
	}
	fmt.Fprintf(w, "```\n")
}
