package sinkreg

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/pgtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/s3test"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// The iceberg kind as validate and the worker use it, on a real S3 server
// and catalog database: a missing table fails the table's probe (not
// found) unless the sink may create it; the opened sink creates it and
// stores rows; a dataset whose field changed type then fails the probe
// with the problem.
func TestIcebergProbesAndSink(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	bucket := srv.CreateBucket(t)
	pg := pgtest.Start(t)
	dsn := pg.CreateDatabase(t)
	k, err := Lookup("iceberg")
	if err != nil {
		t.Fatal(err)
	}
	load := func(create bool, idType string) *config.Config {
		doc := fmt.Sprintf(`
sources:
  - {name: orders, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
datasets:
  - {name: orders, source: orders, sink: ice, timestamp: ts, fields: [{name: id, type: %s}, {name: ts, type: datetime}]}
sinks:
  - {name: ice, iceberg: {catalog: {uri: %q}, warehouse: "s3://%s/wh", namespace: lake, create_table: %v, force_path_style: true, commit_interval: 1s}}
dead_letter:
  file: {path: %s}
`, idType, dsn, bucket, create, t.TempDir())
		cfg, err := config.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	probes := func(cfg *config.Config) []Probe { return k.Probes(cfg.Sinks[0], cfg.Datasets) }

	for _, p := range probes(load(false, "int"))[:1] {
		if ok, class, hint := check(p); !ok {
			t.Fatalf("%s: %s: %s", p.Name, class, hint)
		}
	}
	if ok, class, _ := check(probes(load(false, "int"))[1]); ok || class != ClassNotFound {
		t.Errorf("table probe without the table nor create_table: ok=%v class=%s, want not_found", ok, class)
	}
	if ok, class, hint := check(probes(load(true, "int"))[1]); !ok {
		t.Errorf("table probe with create_table: %s: %s", class, hint)
	}

	cfg := load(true, "int")
	opened, err := k.Rows(t.Context(), cfg.Sinks[0], cfg.Datasets[0], Env{WorkerID: "w1", Log: slog.New(slog.DiscardHandler), Application: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.Ready(t.Context()); err != nil {
		t.Errorf("ready: %v", err)
	}
	row := record.Row{Dataset: "orders", Fields: []record.Field{{Name: "id", Value: int64(1)}, {Name: "ts", Value: time.Now()}},
		Origin: record.Origin{Source: "orders", ShardID: "shardId-000000000000", SequenceNumber: "1", ArrivalTime: time.Now()}}
	if err := opened.Sink.Write(t.Context(), []record.Row{row}); err != nil {
		t.Fatal(err)
	}
	if err := opened.Sink.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, class, hint := check(probes(load(false, "int"))[1]); !ok {
		t.Errorf("table probe of the created table: %s: %s", class, hint)
	}
	p := probes(load(false, "str"))[1]
	_, err = p.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), `column "id" of table lake.orders is long, but the sink writes string`) {
		t.Errorf("table probe of a dataset whose id became str: %v", err)
	}
}
