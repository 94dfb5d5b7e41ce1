package config_test

import (
	"fmt"
	"os"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

func ExampleParse() {
	os.Setenv("EXAMPLE_PG_DSN", "postgres://ingest@db.internal/ingest")
	cfg, err := config.Parse([]byte(`
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:000000000000:stream/orders
      init_position: 2024-05-01 10:00:00.123456+02:00
datasets:
  - name: orders
    source: orders
    where: amount > 0
    fields:
      - {name: id, type: int}
      - {name: amount, type: float}
      - {name: ts, type: datetime}
    sink: warehouse
sinks:
  - name: warehouse
    postgres: {dsn: "${EXAMPLE_PG_DSN}", table: orders}
dead_letter:
  file: {path: out/errors}
consumer:
  worker_id: example
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	k := cfg.Sources[0].Kinesis
	fmt.Println("stream:", k.StreamARN.Name, "in", k.StreamARN.Region)
	fmt.Println("start:", k.InitPosition.ShardIteratorType(), k.InitPosition)
	fmt.Println("format:", k.Format.Kind)
	d := cfg.Datasets[0]
	fmt.Println("dataset:", d.Name, "timestamp", d.Timestamp, "where", d.Where, "->", d.Sink)
	pg := cfg.Sink(d.Sink).Postgres
	fmt.Println("postgres:", pg.DSN, pg.Table, pg.BatchRows, pg.BatchInterval)
	fmt.Println("lease table:", cfg.Consumer.Application, "lease", cfg.Consumer.LeaseDuration, "refresh", cfg.Consumer.LeaseRefresh)
	fmt.Println("metrics:", cfg.Metrics.Listen, "log:", cfg.Log.Level, cfg.Log.Format)
	// Output:
	// stream: orders in us-east-1
	// start: AT_TIMESTAMP 2024-05-01T08:00:00.123456Z
	// format: json
	// dataset: orders timestamp ts where amount > 0 -> warehouse
	// postgres: postgres://ingest@db.internal/ingest orders 500 0s
	// lease table: orders lease 10s refresh 2s
	// metrics: 127.0.0.1:0 log: info text
}

// Every problem is reported at once, each with its YAML path.
func ExampleParse_errors() {
	_, err := config.Parse([]byte(`
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1
datasets:
  - name: orders
    source: order
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: files
sinks:
  - name: files
    file: {path: out/orders, max_byte: 1024}
dead_letter:
  file: {path: out/errors}
consumer:
  lease_refresh: 6s
log:
  level: verbose
`))
	fmt.Println(err)
	// Output:
	// sources[0].kinesis.stream_arn: not a Kinesis stream ARN: "arn:aws:kinesis:us-east-1": too few parts; want arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>
	// datasets[0].source: "order" is not a source; use one of: orders
	// sinks[0].file.max_byte: unknown key "max_byte" (did you mean "max_bytes"?); valid keys here are path, max_bytes, mode
	// consumer.lease_refresh: 6s must be less than half of lease_duration (10s) so a lease is renewed at least twice before it expires; lower lease_refresh or raise lease_duration
	// log.level: "verbose" is not a log level; use debug, info, warn or error
}
