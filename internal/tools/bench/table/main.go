// Command table reads `go test -bench` output on stdin and prints the hot-path
// benchmark (pipeline.BenchmarkHotPath) as a Markdown table: the median of
// each case over -count runs, per record, with the ratio of its CPU time to
// the stdlib-struct baseline's in the same run.
//
//	go test -run '^$' -bench HotPath -benchmem -cpu 1 -count 3 ./pipeline | go run ./internal/tools/bench/table
//
// Lines that are not benchmark results are copied to stderr.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// order and descriptions of the known cases; others follow in input order.
var known = []struct{ name, what string }{
	{"stdlib-struct", "baseline: encoding/json.Unmarshal into a struct, no validation, no sink"},
	{"json-general-convert", "before: jsondec (map[string]any) + schema.Convert, no pipeline"},
	{"json-convert", "after: schema.JSONRecord.Scan + Schema.AppendJSON, no pipeline"},
	{"avro-convert", "avrodec (straight from the bytes) + schema.Convert, no pipeline"},
	{"json-general/file", "before: pipeline, general path, file sink (fsync per 500)"},
	{"json/file", "after: pipeline, JSON fast path, file sink (fsync per 500)"},
	{"json-where/file", "after, with a where every record passes (one scan for both)"},
	{"avro/file", "pipeline, Avro, file sink"},
	{"json-general/postgres", "before: pipeline, general path, PostgreSQL sink"},
	{"json/postgres", "after: pipeline, JSON fast path, PostgreSQL sink"},
	{"avro/postgres", "pipeline, Avro, PostgreSQL sink"},
	{"json/parquet", "lake: pipeline, JSON fast path, s3 sink's Parquet (zstd) objects of 1,000 rows, no upload"},
	{"parquet-alone", "lake floor: parquet-go alone writing the same typed rows from Go structs, 1,000 per object"},
	{"stdlib-cwlogs", "CloudWatch Logs baseline, per log event: compress/gzip + encoding/json of the envelope and of each message into structs"},
	{"cwlogs/file", "CloudWatch Logs, per log event: pipeline, cloudwatch_logs (20 events a gzip record, message json), JSON fast path, file sink"},
}

func main() {
	results, order, err := parse(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	if len(results) == 0 {
		fmt.Fprintln(os.Stderr, "table: no BenchmarkHotPath results on stdin")
		os.Exit(1)
	}
	print(os.Stdout, results, order)
}

// metrics of one case, one slice entry per run.
type metrics map[string][]float64

func parse(r io.Reader, passthrough io.Writer) (map[string]metrics, []string, error) {
	results := map[string]metrics{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkHotPath/") {
			fmt.Fprintln(passthrough, line)
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkHotPath/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil { // the -cpu suffix
				name = name[:i]
			}
		}
		m := results[name]
		if m == nil {
			m = metrics{}
			results[name] = m
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	return results, order, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func print(w io.Writer, results map[string]metrics, order []string) {
	var names []string
	what := map[string]string{}
	for _, k := range known {
		what[k.name] = k.what
		if results[k.name] != nil {
			names = append(names, k.name)
		}
	}
	for _, n := range order {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	runs := 0
	for _, m := range results {
		runs = max(runs, len(m["ns/op"]))
	}
	base := median(results["stdlib-struct"]["cpu-ns/record"])
	fmt.Fprintf(w, "\n### Hot path, one core (-cpu 1), ~200-byte 8-field records, batches of 500 (lake cases: 1,000); median of %d runs\n\n", runs)
	fmt.Fprintln(w, "| case | what | CPU ns/record | records/s per core (CPU) | wall ns/record | records/s (wall) | allocs/record | B/record | CPU vs baseline |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range names {
		m := results[n]
		cpu := median(m["cpu-ns/record"])
		ratio := ""
		if base > 0 && cpu > 0 {
			ratio = fmt.Sprintf("%.2f×", cpu/base)
		}
		perCore := ""
		if cpu > 0 {
			perCore = fmt.Sprintf("%.0f", 1e9/cpu)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f | %.0f | %.1f | %.0f | %s |\n",
			n, what[n], cpu, perCore, median(m["ns/op"]), median(m["records/s"]), median(m["allocs/op"]), median(m["B/op"]), ratio)
	}
	if cwl, base := median(results["cwlogs/file"]["cpu-ns/record"]), median(results["stdlib-cwlogs"]["cpu-ns/record"]); cwl > 0 && base > 0 {
		fmt.Fprintf(w, "\nCloudWatch Logs: cwlogs/file takes %.2f× the CPU per log event of its own baseline, stdlib-cwlogs (gzip and encoding/json into structs, no validation, no sink).\n", cwl/base)
	}
	fmt.Fprintln(w, "\nCPU ns/record: user+system CPU of the whole benchmark process (all goroutines, GC, the sink's committer, syscalls) per record; records/s per core is its inverse. Wall time also holds the waits for fsync (file) or the server (PostgreSQL, whose own CPU is not counted).")
}
