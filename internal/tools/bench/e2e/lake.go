package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// lakeConsumer is kinesis-ingest writing its rows to the lake: the s3 sink
// (Parquet, zstd, partitioned by date and hour) on versitygw.
const lakeConsumer = "kinesis-ingest lake"

// lakeBucket is the bucket of the lake runs; each run writes under a
// prefix of its own.
const lakeBucket = "bench-lake"

// startLake starts versitygw (internal/testenv/s3test) with the
// credentials the consumers are given and creates the lake's bucket.
func startLake(ctx context.Context) (*s3test.Server, error) {
	srv, err := s3test.NewWith(ctx, testaws.Account, benchSecret)
	if err != nil {
		return nil, err
	}
	if _, err := srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(lakeBucket)}); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("create bucket %s on versitygw: %w", lakeBucket, err)
	}
	return srv, nil
}

// lakeSink is the config's rows sink made an s3 sink under prefix, whose
// rows wait at most maxInterval for their object (the sink's deferred
// durability; its default of a minute would make every run a minute long).
func lakeSink(body, rowsDir, prefix string, maxInterval time.Duration) (string, error) {
	file := "    file: {path: " + rowsDir + "}\n"
	if !strings.Contains(body, file) {
		return "", errors.New("the config template's rows sink is not a file sink")
	}
	s3 := fmt.Sprintf("    s3: {bucket: %s, prefix: %s, force_path_style: true, partition_by: [date, hour], max_interval: %s}\n", lakeBucket, prefix, maxInterval)
	return strings.Replace(body, file, s3, 1), nil
}

// lakeTail counts the rows of the Parquet objects under a prefix of the
// lake, read from versitygw's directory: each object once, from its footer,
// when it has appeared (versitygw links an object into place complete).
type lakeTail struct {
	dir  string
	seen map[string]bool
}

// poll returns the rows of the objects that appeared since the last poll.
func (l *lakeTail) poll() (int, error) {
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	n := 0
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no object yet
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != l.dir {
			if d.IsDir() {
				return filepath.SkipDir // versitygw's temporary files
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(path, ".parquet") || l.seen[path] {
			return nil
		}
		rows, err := parquetRows(path)
		if err != nil {
			return err
		}
		l.seen[path] = true
		n += int(rows)
		return nil
	})
	return n, err
}

func parquetRows(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("lake object %s: %w", path, err)
	}
	return pf.NumRows(), nil
}

// printLakeTable compares kinesis-ingest writing the lake with itself
// writing the file sink and with the bare KCL, on the same records in the
// same run.
func printLakeTable(w io.Writer, o options, lake, file, bare []*result) {
	med := func(rs []*result, f func(*result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	fmt.Fprintf(w, "\n### The lake: the same %d records, kinesis-ingest with the s3 sink (Parquet, zstd, partitioned by date and hour, max_interval %s) on versitygw\n\n", o.records, o.lakeMaxInterval)
	fmt.Fprintf(w, "| | kinesis-ingest, s3 sink | kinesis-ingest, file sink | bare KCL (counts only) | s3 ÷ bare KCL | s3 ÷ file |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, f func(*result) float64, format string) {
		a, b, c := med(lake, f), med(file, f), med(bare, f)
		fmt.Fprintf(w, "| %s | "+format+" | "+format+" | "+format+" | %.2f× | %.2f× |\n", name, a, b, c, a/c, a/b)
	}
	row("records/s, process start → last row", func(r *result) float64 { return float64(r.records) / r.last.Sub(r.start).Seconds() }, "%.0f")
	row("records/s, first row → last row", func(r *result) float64 { return float64(r.records) / r.last.Sub(r.first).Seconds() }, "%.0f")
	row("time to first row, ms", func(r *result) float64 { return float64(r.first.Sub(r.start).Milliseconds()) }, "%.0f")
	row("CPU-s per 100k records, whole process (rusage)", func(r *result) float64 { return r.cpuTotal.Seconds() * 100000 / float64(r.records) }, "%.2f")
	row("CPU-s per 100k records, first → last row (/proc, 10 ms ticks)", func(r *result) float64 {
		return (r.cpuLast - r.cpuFirst).Seconds() * 100000 / float64(r.records)
	}, "%.2f")
	row("peak RSS, MiB", func(r *result) float64 { return float64(r.maxRSS) / (1 << 20) }, "%.1f")
	objects := make([]float64, len(lake))
	for i, r := range lake {
		objects[i] = float64(r.objects)
	}
	fmt.Fprintf(w, "\nA row counts once its object is stored (versitygw links it into its directory, polled every %s); objects per run: %.0f (median). The sink holds a chain's rows until its object is due (here by max_interval), so the lake's first row shows that much later and its first → last window is not the others': compare records/s from process start and CPU of the whole process. versitygw's own CPU is not in the figures (nor is kinesis-mock's or dynalite's for any column).\n", o.poll, median(objects))
}
