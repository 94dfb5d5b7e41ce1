package sinkreg

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/postgres"
)

func init() {
	Register(&Kind{
		Name: "postgres",
		// A table that does not fit (or is missing without create_table) is
		// an error here.
		Rows: func(ctx context.Context, s config.Sink, ds config.Dataset, env Env) (Opened[sinks.RowSink], error) {
			c := postgresRowConfig(s.Postgres, ds)
			c.OnDuplicates, c.OnChanges = env.OnDuplicates, env.OnChanges
			rs, err := postgres.NewRowSink(ctx, c, env.Log.With("sink", s.Name, "dataset", ds.Name))
			if err != nil {
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q (dataset %q): %w", s.Name, ds.Name, err)
			}
			return Opened[sinks.RowSink]{Sink: rs, Ready: rs.Ping}, nil
		},
		// The dead-letter table is created when missing.
		DeadLetters: func(ctx context.Context, dl config.DeadLetter, env Env) (Opened[sinks.DeadLetterSink], error) {
			c := postgresDeadLetterConfig(dl.Postgres)
			c.OnDuplicates = env.OnDuplicates
			d, err := postgres.NewDeadLetterSink(ctx, c, env.Log.With("sink", "dead_letter"))
			if err != nil {
				return Opened[sinks.DeadLetterSink]{}, fmt.Errorf("dead_letter: %w", err)
			}
			return Opened[sinks.DeadLetterSink]{Sink: d, Ready: d.Ping}, nil
		},
		// Per dataset: the server is reachable with the DSN, and the table
		// fits the dataset (or is missing and will be created).
		Probes: func(s config.Sink, datasets []config.Dataset) []Probe {
			var out []Probe
			for _, ds := range datasets {
				out = append(out, tableProbe(fmt.Sprintf("sink %s (dataset %s): table %s: fits", s.Name, ds.Name, s.Postgres.Table), postgresRowConfig(s.Postgres, ds)))
			}
			return out
		},
		DeadLetterProbes: func(dl config.DeadLetter) []Probe {
			return []Probe{tableProbe("dead_letter: table "+dl.Postgres.Table+": fits", postgresDeadLetterConfig(dl.Postgres))}
		},
		Errors: func(dl config.DeadLetter) errview.Source {
			return errview.PostgresSource{Reader: postgres.Reader{DSN: dl.Postgres.DSN, Table: dl.Postgres.Table}}
		},
		Letters: func(dl config.DeadLetter) redrive.Source {
			return redrive.PostgresSource{Reader: postgres.Reader{DSN: dl.Postgres.DSN, Table: dl.Postgres.Table}}
		},
		// The origin is the key: a row already stored is skipped and
		// counted, wherever it stands in its shard.
		OlderRows: true,
	})
}

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

// tableProbe checks, changing nothing, that the server answers and the
// table fits c (postgres.Check).
func tableProbe(name string, c postgres.Config) Probe {
	return Probe{
		Name: name,
		Run: func(ctx context.Context) (string, error) {
			if err := postgres.Check(ctx, c); err != nil {
				return "", err
			}
			return "reachable; the table exists and fits, or will be created", nil
		},
		Explain: explainPostgres,
	}
}

func explainPostgres(err error) (string, string) {
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
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"), strings.HasPrefix(pe.Code, "53"):
			// Connection exceptions, a server starting up or shutting down,
			// out of connections or memory: it will answer again.
			return ClassUnavailable, "PostgreSQL cannot serve now (starting up, shutting down or out of resources); run waits for it"
		}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
		return ClassUnreachable, "check the DSN's host and port, and that PostgreSQL runs and accepts connections from this host"
	}
	return ClassOther, ""
}
