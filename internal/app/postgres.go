package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// postgresRowConfig is the sink configuration of one dataset on a postgres
// sink.
func postgresRowConfig(p *config.PostgresSink, ds config.Dataset) postgres.Config {
	c := postgresConfig(p)
	c.Columns = ds.Schema.Columns()
	c.Timestamp = ds.Timestamp
	return c
}

// postgresDeadLetterConfig is the configuration of the dead-letter table. Its
// layout is kinesis-ingest's own (like the lease table), so it is created
// when missing whatever create_table says.
func postgresDeadLetterConfig(p *config.PostgresSink) postgres.Config {
	c := postgresConfig(p)
	c.CreateTable = true
	return c
}

func postgresConfig(p *config.PostgresSink) postgres.Config {
	return postgres.Config{
		DSN:           p.DSN,
		Table:         p.Table,
		CreateTable:   p.CreateTable,
		BatchRows:     p.BatchRows,
		BatchBytes:    p.BatchBytes,
		BatchInterval: p.BatchInterval,
	}
}

// PostgresTables lists the tables of the config's postgres sinks: one per
// dataset on a postgres sink, and the dead-letter table; name says where
// each comes from, for messages.
type PostgresTable struct {
	// Name says which table in validate's output ("sink s: table t").
	Name   string
	Config postgres.Config
}

func PostgresTables(cfg *config.Config) []PostgresTable {
	var out []PostgresTable
	for _, ds := range cfg.Datasets {
		s := cfg.Sink(ds.Sink)
		if s == nil || s.Postgres == nil {
			continue
		}
		out = append(out, PostgresTable{
			Name:   fmt.Sprintf("sink %s (dataset %s): table %s", s.Name, ds.Name, s.Postgres.Table),
			Config: postgresRowConfig(s.Postgres, ds),
		})
	}
	if p := cfg.DeadLetter.Postgres; p != nil {
		out = append(out, PostgresTable{Name: "dead_letter: table " + p.Table, Config: postgresDeadLetterConfig(p)})
	}
	return out
}

// newPostgresRowSink opens the row sink of one dataset on a postgres sink.
// It fails if the table does not fit (or is missing without create_table);
// an unreachable server is not an error here (the sink retries at the first
// Write). onDuplicates may be nil.
func newPostgresRowSink(ctx context.Context, s *config.Sink, ds config.Dataset, log *slog.Logger, onDuplicates func(n int), onChanges func(upserted, deleted, older int)) (*postgres.RowSink, error) {
	c := postgresRowConfig(s.Postgres, ds)
	c.OnDuplicates = onDuplicates
	c.OnChanges = onChanges
	rs, err := postgres.NewRowSink(ctx, c, log.With("sink", s.Name, "dataset", ds.Name))
	if err != nil {
		return nil, fmt.Errorf("sink %q (dataset %q): %w", s.Name, ds.Name, err)
	}
	return rs, nil
}

// newPostgresDeadLetterSink opens the dead-letter table, creating it if
// missing. onDuplicates may be nil.
func newPostgresDeadLetterSink(ctx context.Context, p *config.PostgresSink, log *slog.Logger, onDuplicates func(n int)) (*postgres.DeadLetterSink, error) {
	c := postgresDeadLetterConfig(p)
	c.OnDuplicates = onDuplicates
	d, err := postgres.NewDeadLetterSink(ctx, c, log.With("sink", "dead_letter"))
	if err != nil {
		return nil, fmt.Errorf("dead_letter: %w", err)
	}
	return d, nil
}
