// Package sinkreg is the registry of sink kinds. A kind (file, postgres)
// says, in one Kind registered here, how to open its row and dead-letter
// sinks from the config, what `kinesis-ingest validate` probes, and where the
// errors view reads its dead letters back from. The worker (internal/service/app),
// validate and the errors command look a kind up here instead of switching
// on it.
//
// A new kind is a package under sinks/ (its sinks, running sinks/sinktest,
// and a reader of its own output), its config section (internal/service/config:
// the settings struct and its entry in the config's table of sink kinds), and
// one Register call in a file of this package.
//
// The registry is not under sinks/ because it turns the config
// (internal/service/config) into sinks, and a sink may import no wiring.
package sinkreg

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/s3"
)

// Kind is one kind of sink.
type Kind struct {
	// Name is the kind's key in the config (sinks[].<name>, dead_letter.<name>).
	Name string
	// Rows opens the row sink of dataset ds on sink s (of this kind). A
	// server that does not answer is not an error here: the sink retries
	// at its first Write.
	Rows func(ctx context.Context, s config.Sink, ds config.Dataset, env Env) (Opened[sinks.RowSink], error)
	// DeadLetters opens the dead-letter sink dl (of this kind).
	DeadLetters func(ctx context.Context, dl config.DeadLetter, env Env) (Opened[sinks.DeadLetterSink], error)
	// Probes are the commit-time checks of sink s and of the datasets it
	// receives (maybe none): nothing is changed that running would not.
	Probes func(s config.Sink, datasets []config.Dataset) []Probe
	// DeadLetterProbes are the commit-time checks of the dead-letter sink.
	DeadLetterProbes func(dl config.DeadLetter) []Probe
	// Errors is where the errors view reads the dead letters of dl back.
	Errors func(dl config.DeadLetter) errview.Source
	// Letters is where redrive reads the dead letters of dl back whole.
	Letters func(dl config.DeadLetter) redrive.Source
	// OlderRows says that the kind's row sinks store a row older (in its
	// shard) than rows they hold, as a redrive of dead letters makes: a
	// kind that drops such rows as already stored leaves it false, and
	// redrive writes none of its datasets.
	OlderRows bool
	// RowsOnly kinds hold no dead letters (the config refuses them under
	// dead_letter): DeadLetters, DeadLetterProbes, Errors and Letters are nil.
	RowsOnly bool
}

// Env is what the worker gives every sink it opens.
type Env struct {
	WorkerID string
	Log      *slog.Logger
	// OnDuplicates, when set, is told of rows or letters a sink found
	// already stored (a replay); OnChanges of a keyed dataset's upserts,
	// deletes and changes older than the stored row. A kind that cannot
	// tell ignores them.
	OnDuplicates func(n int)
	OnChanges    func(upserted, deleted, older int)
	// S3, when set, is told what an s3 sink does (uploads, conflicts,
	// duplicates, flushes) instead of OnDuplicates.
	S3 s3.Observer
	// Iceberg, when set, is told of an iceberg sink's commits.
	Iceberg iceberg.Observer
	// Application names the consumer (consumer.application): the iceberg
	// sink keeps each shard's position under it.
	Application string
}

// Opened is a sink opened by a Kind.
type Opened[S interface{ Close() error }] struct {
	Sink S
	// Ready, when set, is the sink's readiness check (/readyz): its
	// directory is writable, its server answers.
	Ready func(ctx context.Context) error
}

// Probe is one commit-time check of a sink (kinesis-ingest validate).
type Probe struct {
	// Name says what is checked: "sink orders_file: writable".
	Name string
	// Run checks; detail says what a pass found.
	Run func(ctx context.Context) (detail string, err error)
	// Explain sorts a failure into one of validate's classes (the Class*
	// values) and says what to do about it.
	Explain func(err error) (class, hint string)
}

// The failure classes a Probe explains with: values of validate.Class.
const (
	ClassNotFound     = "not_found"
	ClassAccessDenied = "access_denied"
	ClassUnreachable  = "unreachable"
	ClassUnavailable  = "unavailable"
	ClassCredentials  = "invalid_credentials"
	ClassNotWritable  = "not_writable"
	ClassOther        = "error"
)

var (
	mu    sync.RWMutex
	kinds = map[string]*Kind{}
)

// Register adds k; it panics on a kind registered twice or missing a part,
// which is a programming error found by the first test.
func Register(k *Kind) {
	letters := k.DeadLetters != nil && k.DeadLetterProbes != nil && k.Errors != nil && k.Letters != nil
	if k.Name == "" || k.Rows == nil || k.Probes == nil || (!letters && !k.RowsOnly) {
		panic(fmt.Sprintf("sinkreg: kind %q registered without every part", k.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("sinkreg: kind %q registered twice", k.Name))
	}
	kinds[k.Name] = k
}

// Lookup returns the kind named name.
func Lookup(name string) (*Kind, error) {
	mu.RLock()
	defer mu.RUnlock()
	if k, ok := kinds[name]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("sink kind %q is not supported by this build (it has %v)", name, namesLocked())
}

// Names lists the registered kinds, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(kinds))
	for n := range kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Errors is where the errors view reads the dead letters of cfg back.
func Errors(cfg *config.Config) errview.Source {
	k, err := Lookup(cfg.DeadLetter.Kind())
	if err != nil {
		return errview.Unsupported{Kind: cfg.DeadLetter.Kind()}
	}
	return k.Errors(cfg.DeadLetter)
}

// Letters is where redrive reads the dead letters of cfg back.
func Letters(cfg *config.Config) redrive.Source {
	k, err := Lookup(cfg.DeadLetter.Kind())
	if err != nil {
		return brokenLetters{fmt.Errorf("dead_letter: %w", err)}
	}
	return k.Letters(cfg.DeadLetter)
}

// brokenLetters is the letters of a sink that cannot be read back: every
// read says why.
type brokenLetters struct{ err error }

func (b brokenLetters) Letters(context.Context, redrive.Filter, func(*record.DeadLetter) error) (redrive.Stats, error) {
	return redrive.Stats{}, b.err
}

// Probes lists the commit-time checks of every sink of cfg, in the order of
// cfg.Sinks, then those of the dead-letter sink. A sink of a kind this build
// lacks is one failing probe.
func Probes(cfg *config.Config) []Probe {
	var out []Probe
	for _, s := range cfg.Sinks {
		k, err := Lookup(s.Kind())
		if err != nil {
			out = append(out, failed("sink "+s.Name, err))
			continue
		}
		var datasets []config.Dataset
		for _, ds := range cfg.Datasets {
			if ds.Sink == s.Name {
				datasets = append(datasets, ds)
			}
		}
		out = append(out, k.Probes(s, datasets)...)
	}
	k, err := Lookup(cfg.DeadLetter.Kind())
	if err != nil {
		return append(out, failed("dead_letter", err))
	}
	return append(out, k.DeadLetterProbes(cfg.DeadLetter)...)
}

func failed(name string, err error) Probe {
	return Probe{
		Name:    name,
		Run:     func(context.Context) (string, error) { return "", err },
		Explain: func(error) (string, string) { return ClassOther, "use a sink kind of " + fmt.Sprint(Names()) },
	}
}
