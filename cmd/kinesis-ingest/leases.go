package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/leaseview"
)

const leasesHelp = `kinesis-ingest leases --config FILE: one line per shard of each source of FILE: its
state (open, closed, finished, gone), the worker holding its lease and when that lease
expires, its checkpoint, its parents, and how far behind the checkpoint is: Kinesis'
MillisBehindLatest read at the checkpoint and the arrival time of the next unread
record; then the workers that announced themselves in each lease table. Read-only: it
reads one record per shard and writes nothing.`

const resetHelp = `kinesis-ingest reset --config FILE --to latest|trim_horizon|TIMESTAMP [--shard ID] [--yes]:
rewind the application's checkpoints: the next start reads each shard (or only --shard)
from the given position (a TIMESTAMP in any init_position form: the records that arrived
at or after it; latest: those that arrive after this reset). Finished parent shards are
rewound too, so their records are read again before their children's; shards Kinesis no
longer lists (past the retention) are left as they are. It refuses while a worker of the
application holds a live lease, naming the workers: stop them first (SIGTERM releases
their leases). Without --yes it only prints what it would change.`

// viewSources opens each source's Kinesis client and lease table.
func viewSources(ctx context.Context, cfg *config.Config) ([]leaseview.Source, error) {
	session := app.SessionName(cfg.Consumer.WorkerID)
	ac, err := app.NewAWS(cfg.Consumer.CallTimeout)
	if err != nil {
		return nil, err
	}
	dcfg, err := ac.Config(ctx, cfg.Sources[0].Kinesis.StreamARN.Region, cfg.Consumer.RoleARN, "", session)
	if err != nil {
		return nil, fmt.Errorf("lease table credentials: %w", err)
	}
	db := dynamodb.NewFromConfig(dcfg)
	var out []leaseview.Source
	for _, src := range cfg.Sources {
		k := src.Kinesis
		kcfg, err := ac.Config(ctx, k.StreamARN.Region, k.RoleARN, k.ExternalID, session)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		name := app.LeaseTable(cfg, src.Name)
		tbl, err := leases.New(leases.Config{Client: db, Table: name, WorkerID: "kinesis-ingest-ops", LeaseDuration: cfg.Consumer.LeaseDuration,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		out = append(out, leaseview.Source{Name: src.Name, StreamName: k.StreamARN.Name, Kinesis: kinesis.NewFromConfig(kcfg), Table: tbl, TableName: name})
	}
	return out, nil
}

func readShards(ctx context.Context, cfg *config.Config, now time.Time) ([]leaseview.Source, []leaseview.Shard, error) {
	srcs, err := viewSources(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	var all []leaseview.Shard
	for _, s := range srcs {
		shards, err := leaseview.Read(ctx, s, now)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, shards...)
	}
	return srcs, all, nil
}

func cmdLeases(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("leases", leasesHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	env := fs.String("env", "", envHelp)
	asJSON := fs.Bool("json", false, "print a JSON array of shards")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfigEnv(*path, *env, stderr)
	if !ok {
		return 2
	}
	now := time.Now()
	srcs, shards, err := readShards(ctx, cfg, now)
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the leases: %v\n", err)
		return 1
	}
	if *asJSON {
		if shards == nil {
			shards = []leaseview.Shard{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(shards); err != nil {
			return 1
		}
		return 0
	}
	printShards(stdout, shards, now)
	for _, src := range srcs {
		ws, err := src.Table.Workers(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "cannot read the workers of source %s: %v\n", src.Name, err)
			return 1
		}
		printWorkers(stdout, src.Name, ws)
	}
	return 0
}

// printWorkers lists the workers that announced themselves in a source's
// lease table (lease passes: each live worker rewrites its row every
// shard_sync_interval, so "until" keeps moving while it runs).
func printWorkers(w io.Writer, source string, ws []leases.Worker) {
	if len(ws) == 0 {
		fmt.Fprintf(w, "\nworkers of %s: none announced (none running, or all stopped cleanly)\n", source)
		return
	}
	fmt.Fprintf(w, "\nworkers of %s (announced every shard_sync_interval; a killed worker's row stays until swept):\n", source)
	for _, x := range ws {
		limit := "no max_leases"
		if x.MaxLeases > 0 {
			limit = fmt.Sprintf("max_leases %d", x.MaxLeases)
		}
		fmt.Fprintf(w, "  %s  announced until %s  %s\n", x.ID, x.Until.UTC().Format("15:04:05.000Z"), limit)
	}
}

func printShards(w io.Writer, shards []leaseview.Shard, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSHARD\tSTATE\tOWNER\tLEASE\tCHECKPOINT\tBEHIND\tNEXT RECORD AGE\tPARENTS")
	for _, s := range shards {
		owner, lease := dash(s.Owner), "-"
		if s.LeaseExpires != nil {
			if s.LeaseLive {
				lease = "live until " + s.LeaseExpires.UTC().Format("15:04:05.000Z")
			} else {
				lease = "expired " + s.LeaseExpires.UTC().Format("15:04:05.000Z")
			}
		}
		cp := dash(s.Checkpoint)
		if s.Checkpoint == "" && s.StartAt != "" {
			cp = "rewound: " + s.StartAt
		}
		behindText, age := "-", "-"
		if s.MillisBehind != nil {
			behindText = (time.Duration(*s.MillisBehind) * time.Millisecond).String()
		}
		if s.NextArrival != nil {
			age = now.Sub(*s.NextArrival).Round(time.Millisecond).String()
		} else if s.MillisBehind != nil {
			age = "none unread"
		}
		if s.ReadError != "" {
			behindText = "unreadable: " + s.ReadError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Source, s.ShardID, s.State, owner, lease, cp, behindText, age, dash(strings.Join(s.Parents, ",")))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// skipGone leaves out the shards Kinesis no longer lists: nothing of them
// can be read again, and a rewind would remove a trimmed parent's SHARD_END,
// so that its children's next lease would report it lost to retention.
func skipGone(changes []leaseview.Change) (keep []leaseview.Change, gone []leaseview.Shard) {
	for _, c := range changes {
		if c.Shard.State == leaseview.StateGone {
			gone = append(gone, c.Shard)
			continue
		}
		keep = append(keep, c)
	}
	return keep, gone
}

func cmdReset(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("reset", resetHelp, stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	env := fs.String("env", "", envHelp)
	to := fs.String("to", "", "latest, trim_horizon or a timestamp (required)")
	shard := fs.String("shard", "", "rewind only this shard")
	yes := fs.Bool("yes", false, "apply the changes (without it, only print them)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *to == "" {
		fmt.Fprintln(stderr, "--to is required: latest, trim_horizon or a timestamp")
		return 2
	}
	ip, err := config.ParsePosition(*to)
	if err != nil {
		fmt.Fprintf(stderr, "--to: %v\n", err)
		return 2
	}
	now := time.Now()
	ip = ip.Resolve(now)
	if ip.Kind == config.Latest {
		// Pinned to this instant, as an application's first start pins its
		// latest: a stored LATEST would be a new "now" at every start until
		// the shard's first checkpoint, skipping what came in between.
		ip = config.InitPosition{Kind: config.AtTimestamp, Timestamp: now.UTC().Truncate(time.Microsecond)}
	}
	pos := leases.Position{Type: ip.ShardIteratorType(), Timestamp: ip.Timestamp}
	cfg, ok := loadConfigEnv(*path, *env, stderr)
	if !ok {
		return 2
	}
	srcs, shards, err := readShards(ctx, cfg, now)
	if err != nil {
		fmt.Fprintf(stderr, "cannot read the leases: %v\n", err)
		return 1
	}
	changes, err := leaseview.Plan(shards, pos, *shard)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	changes, gone := skipGone(changes)
	if *shard != "" && len(gone) > 0 {
		fmt.Fprintf(stderr, "--shard %s: Kinesis no longer lists it (its records are past the retention); there is nothing to read again\n", *shard)
		return 2
	}
	for _, g := range gone {
		fmt.Fprintf(stdout, "%s %s (gone): left as it is: Kinesis no longer lists it\n", g.Table, g.ShardID)
	}
	// Clocks differ between this machine and the workers': a lease counts
	// as live until a lease duration after it expired here.
	cutoff := now.Add(-cfg.Consumer.LeaseDuration)
	if live := leaseview.LiveOwners(shards, cutoff); len(live) > 0 {
		workers := make([]string, 0, len(live))
		for w, ids := range live {
			workers = append(workers, fmt.Sprintf("%s (%s)", w, strings.Join(ids, ", ")))
		}
		sort.Strings(workers)
		fmt.Fprintf(stderr, "refusing to reset: workers hold live leases of the application: %s; stop them (SIGTERM releases their leases) and run reset again\n", strings.Join(workers, "; "))
		return 1
	}
	for _, c := range changes {
		from := dash(c.Shard.Checkpoint)
		if c.Shard.Checkpoint == "" && c.Shard.StartAt != "" {
			from = "rewound: " + c.Shard.StartAt
		}
		fmt.Fprintf(stdout, "%s %s (%s): %s -> %s\n", c.Shard.Table, c.Shard.ShardID, c.Shard.State, from, c.To.Encode())
	}
	if !*yes {
		fmt.Fprintf(stdout, "%d shards would be rewound; nothing changed: run again with --yes to apply\n", len(changes))
		return 0
	}
	tables := map[string]*leases.Table{}
	for _, s := range srcs {
		tables[s.TableName] = s.Table
	}
	failed := 0
	for _, c := range changes {
		if err := tables[c.Shard.Table].Rewind(ctx, c.Shard.ShardID, c.To, time.Now().Add(-cfg.Consumer.LeaseDuration)); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%d of %d shards not rewound; run reset again once their workers stopped\n", failed, len(changes))
		return 1
	}
	fmt.Fprintf(stdout, "%d shards rewound; the next start reads them from %s\n", len(changes), pos)
	return 0
}
