package sinkreg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/redact"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/catalog"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

func init() {
	Register(&Kind{
		Name: "iceberg",
		// One sink (one table) per dataset.
		Rows: func(ctx context.Context, s config.Sink, ds config.Dataset, env Env) (Opened[sinks.RowSink], error) {
			c := s.Iceberg
			client, err := s3Client(ctx, icebergS3(c), env.WorkerID)
			if err != nil {
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q: %w", s.Name, err)
			}
			cat := &lazyCatalog{cfg: catalog.SQLConfig{DSN: c.Catalog.URI, Name: c.Catalog.Name, Init: true}}
			var obs iceberg.Observer
			if env.Iceberg != nil {
				obs = env.Iceberg
			}
			cfg := icebergConfig(c, ds, env.Application, cat, iceberg.S3Files{Client: client, SSEKMSKeyID: c.SSEKMSKeyID}, obs)
			cfg.Worker = env.WorkerID
			rs, err := iceberg.New(ctx, cfg,
				env.Log.With("sink", s.Name, "dataset", ds.Name))
			if err != nil {
				cat.Close()
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q (dataset %q): %w", s.Name, ds.Name, err)
			}
			return Opened[sinks.RowSink]{Sink: closing{rs, cat.Close}, Ready: cat.Ping}, nil
		},
		RowsOnly: true,
		// OlderRows is false: a row at or below its shard's committed
		// position is dropped as held, so redrive writes none of its datasets.
		Probes: func(s config.Sink, datasets []config.Dataset) []Probe {
			out := []Probe{icebergCatalogProbe(s)}
			for _, ds := range datasets {
				out = append(out, icebergTableProbe(s, ds))
			}
			return out
		},
	})
}

// icebergS3 is the S3 part of an iceberg sink's config.
func icebergS3(c *config.IcebergSink) *config.S3Sink {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(c.Warehouse, "s3a://"), "s3://"), "/")
	return &config.S3Sink{Bucket: bucket, Prefix: prefix, ForcePathStyle: c.ForcePathStyle, RoleARN: c.RoleARN, SSEKMSKeyID: c.SSEKMSKeyID}
}

func icebergConfig(c *config.IcebergSink, ds config.Dataset, app string, cat iceberg.Catalog, files iceberg.Files, obs iceberg.Observer) iceberg.Config {
	return iceberg.Config{
		Catalog:        cat,
		Files:          files,
		Warehouse:      c.Warehouse,
		Namespace:      strings.Split(c.Namespace, "."),
		Table:          c.TableFor(ds.Name),
		CreateTable:    c.CreateTable,
		PartitionBy:    c.PartitionBy,
		CommitInterval: c.CommitInterval,
		BufferBytes:    c.BufferBytes,
		Application:    app,
		Dataset:        ds.Name,
		Columns:        ds.Schema.Columns(),
		Changelog:      ds.Keyed(),
		Compression:    c.Compression,
		Observer:       obs,
	}
}

// closing closes the catalog after the sink (its last commit needs it).
type closing struct {
	*iceberg.Sink
	after func()
}

func (c closing) Close() error {
	err := c.Sink.Close()
	c.after()
	return err
}

// lazyCatalog connects on first use: a catalog database that does not
// answer at start is not an error (the sink's commits retry), as for the
// postgres sink.
type lazyCatalog struct {
	cfg catalog.SQLConfig
	mu  sync.Mutex
	c   *catalog.SQL
}

func (l *lazyCatalog) get(ctx context.Context) (*catalog.SQL, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		return l.c, nil
	}
	c, err := catalog.OpenSQL(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	l.c = c
	return c, nil
}

func (l *lazyCatalog) Load(ctx context.Context, ns []string, t string) (string, error) {
	c, err := l.get(ctx)
	if err != nil {
		return "", err
	}
	return c.Load(ctx, ns, t)
}

func (l *lazyCatalog) Create(ctx context.Context, ns []string, t, loc string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Create(ctx, ns, t, loc)
}

func (l *lazyCatalog) Swap(ctx context.Context, ns []string, t, expected, next string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Swap(ctx, ns, t, expected, next)
}

func (l *lazyCatalog) CreateNamespace(ctx context.Context, ns []string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.CreateNamespace(ctx, ns)
}

func (l *lazyCatalog) Ping(ctx context.Context) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Ping(ctx)
}

func (l *lazyCatalog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		l.c.Close()
		l.c = nil
	}
}

// icebergCatalogProbe: the catalog database answers and holds (or may
// create) the catalog's tables; the warehouse is writable.
func icebergCatalogProbe(s config.Sink) Probe {
	c := s.Iceberg
	return Probe{
		Name: fmt.Sprintf("sink %s: iceberg catalog %q at %s, warehouse %s writable", s.Name, c.Catalog.Name, redact.DSN(c.Catalog.URI), c.Warehouse),
		Run: func(ctx context.Context) (string, error) {
			cat, err := catalog.OpenSQL(ctx, catalog.SQLConfig{DSN: c.Catalog.URI, Name: c.Catalog.Name, Init: true})
			if err != nil {
				return "", err
			}
			defer cat.Close()
			s3c := icebergS3(c)
			client, err := s3Client(ctx, s3c, "validate")
			if err != nil {
				return "", err
			}
			if err := s3.Check(ctx, client, s3c.Bucket, s3c.Prefix, c.SSEKMSKeyID); err != nil {
				return "", err
			}
			return "the catalog answered; created, read and deleted a probe object in the warehouse", nil
		},
		Explain: explainIceberg,
	}
}

// icebergTableProbe: the dataset's table exists and fits it, or the sink
// may create it (then its namespace is checked).
func icebergTableProbe(s config.Sink, ds config.Dataset) Probe {
	c := s.Iceberg
	ns, name := strings.Split(c.Namespace, "."), c.TableFor(ds.Name)
	full := c.Namespace + "." + name
	return Probe{
		Name: fmt.Sprintf("sink %s: iceberg table %s fits dataset %s", s.Name, full, ds.Name),
		Run: func(ctx context.Context) (string, error) {
			cat, err := catalog.OpenSQL(ctx, catalog.SQLConfig{DSN: c.Catalog.URI, Name: c.Catalog.Name, Init: true})
			if err != nil {
				return "", err
			}
			defer cat.Close()
			loc, err := cat.Load(ctx, ns, name)
			if errors.Is(err, catalog.ErrNoSuchTable) {
				if !c.CreateTable {
					return "", fmt.Errorf("table %s does not exist: %w", full, err)
				}
				return "the table is missing; the sink creates it (create_table: true)", nil
			}
			if err != nil {
				return "", err
			}
			client, err := s3Client(ctx, icebergS3(c), "validate")
			if err != nil {
				return "", err
			}
			b, err := iceberg.S3Files{Client: client}.Get(ctx, loc)
			if err != nil {
				return "", fmt.Errorf("read the table's metadata: %w", err)
			}
			m, err := table.Parse(b)
			if err != nil {
				return "", fmt.Errorf("the table's metadata %s: %w", loc, err)
			}
			if problems := iceberg.Problems(m, full, ds.Schema.Columns(), ds.Keyed(), c.PartitionBy); len(problems) > 0 {
				return "", &tableProblems{table: full, problems: problems}
			}
			return "the table exists and holds the dataset's columns", nil
		},
		Explain: explainIceberg,
	}
}

type tableProblems struct {
	table    string
	problems []string
}

func (e *tableProblems) Error() string {
	return fmt.Sprintf("table %s does not fit:\n  - %s", e.table, strings.Join(e.problems, "\n  - "))
}

func explainIceberg(err error) (string, string) {
	var tp *tableProblems
	switch {
	case errors.As(err, &tp):
		return ClassOther, "fix each problem as it says"
	case errors.Is(err, catalog.ErrNoSuchTable):
		return ClassNotFound, "create the table, or set create_table: true"
	case errors.Is(err, catalog.ErrNoCatalogTables):
		return ClassNotFound, "create the catalog's tables (the error shows their DDL)"
	case catalog.IsTransient(err):
		return ClassUnreachable, "check the catalog's connection string (catalog.uri), that the database runs and the network"
	}
	var ae *s3.AccessError
	if errors.As(err, &ae) || errors.Is(err, s3.ErrNoBucket) {
		return explainS3(err)
	}
	return ClassOther, ""
}
