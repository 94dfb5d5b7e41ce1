package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

// postgresRowConfig is the sink configuration of one dataset on a postgres
// sink.
func postgresRowConfig(p *config.PostgresSink, ds config.Dataset) postgres.Config {
	c := postgresConfig(p)
	c.Columns = ds.Schema.Columns()
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

// postgresTables lists the tables of the config's postgres sinks: one per
// dataset on a postgres sink, and the dead-letter table; name says where
// each comes from, for messages.
type postgresTable struct {
	name string
	cfg  postgres.Config
}

func postgresTables(cfg *config.Config) []postgresTable {
	var out []postgresTable
	for _, ds := range cfg.Datasets {
		s := cfg.Sink(ds.Sink)
		if s == nil || s.Postgres == nil {
			continue
		}
		out = append(out, postgresTable{
			name: fmt.Sprintf("sink %s (dataset %s): table %s", s.Name, ds.Name, s.Postgres.Table),
			cfg:  postgresRowConfig(s.Postgres, ds),
		})
	}
	if p := cfg.DeadLetter.Postgres; p != nil {
		out = append(out, postgresTable{name: "dead_letter: table " + p.Table, cfg: postgresDeadLetterConfig(p)})
	}
	return out
}

// newPostgresRowSink opens the row sink of one dataset on a postgres sink.
// It fails if the table does not fit (or is missing without create_table);
// an unreachable server is not an error here (the sink retries at the first
// Write). onDuplicates may be nil.
func newPostgresRowSink(ctx context.Context, s *config.Sink, ds config.Dataset, log *slog.Logger, onDuplicates func(n int)) (*postgres.RowSink, error) {
	c := postgresRowConfig(s.Postgres, ds)
	c.OnDuplicates = onDuplicates
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

// postgresChecks is the commit-time check of every postgres table the
// config writes: the server is reachable with the DSN, and the table fits
// its dataset (or is missing and will be created). Nothing is changed.
func postgresChecks(ctx context.Context, cfg *config.Config) []Check {
	var out []Check
	for _, t := range postgresTables(cfg) {
		name := t.name + ": fits"
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		err := postgres.Check(cctx, t.cfg)
		cancel()
		if err == nil {
			out = append(out, pass(name, "reachable; the table exists and fits, or will be created"))
			continue
		}
		class, hint := classifyPostgres(err)
		out = append(out, fail(name, class, err, hint))
	}
	return out
}

func classifyPostgres(err error) (Class, string) {
	var te *postgres.TableError
	if errors.As(err, &te) {
		return ClassNotWritable, "change the table as the error says, or point the sink at another table (create_table: true creates a missing one)"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"):
			return ClassCredentials, "check the user and password in the DSN"
		case pe.Code == "3D000":
			return ClassNotFound, "create the database or fix its name in the DSN"
		case pe.Code == "42501":
			return ClassAccessDenied, "grant the DSN's role the privileges the error names"
		}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
		return ClassUnreachable, "check the DSN's host and port, and that PostgreSQL runs and accepts connections from this host"
	}
	return ClassOther, ""
}
