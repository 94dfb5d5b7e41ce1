package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/metrics"
	"github.com/kinesis-ingest/kinesis-ingest/pipeline"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// tally counts what this worker made durable, per dataset, for the summary a
// bounded run prints. The pipeline tells it (pipeline.Tally) once a write is
// durable: a row refused by its sink is counted as the dead letter it
// becomes, not as a row.
type tally struct {
	mu      sync.Mutex
	rows    map[string]int                   // dataset
	letters map[string]map[record.Reason]int // dataset ("" for none) -> reason
}

var _ pipeline.Tally = (*tally)(nil)

func newTally() *tally {
	return &tally{rows: map[string]int{}, letters: map[string]map[record.Reason]int{}}
}

func (t *tally) Wrote(dataset string, rows int) {
	t.mu.Lock()
	t.rows[dataset] += rows
	t.mu.Unlock()
}

func (t *tally) DeadLettered(letters []record.DeadLetter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range letters {
		l := &letters[i]
		m := t.letters[l.Dataset]
		if m == nil {
			m = map[record.Reason]int{}
			t.letters[l.Dataset] = m
		}
		m[l.Reason]++
	}
}

// Summary is what a worker made durable: rows by dataset, dead letters by
// dataset ("" for a record of no dataset: decode_error, no_route) and reason.
type Summary struct {
	Rows        map[string]int
	DeadLetters map[string]map[record.Reason]int
}

// Summary returns what this worker made durable so far.
func (a *App) Summary() Summary {
	a.tally.mu.Lock()
	defer a.tally.mu.Unlock()
	s := Summary{Rows: maps.Clone(a.tally.rows), DeadLetters: map[string]map[record.Reason]int{}}
	for d, m := range a.tally.letters {
		s.DeadLetters[d] = maps.Clone(m)
	}
	return s
}

// Print writes the summary, one line per dataset and per reason.
func (s Summary) Print(w io.Writer) {
	datasets := slices.Sorted(maps.Keys(s.Rows))
	for d := range s.DeadLetters {
		if !slices.Contains(datasets, d) {
			datasets = append(datasets, d)
		}
	}
	slices.Sort(datasets)
	rows, letters := 0, 0
	for _, d := range datasets {
		name := d
		if name == "" {
			name = "(no dataset)"
		}
		fmt.Fprintf(w, "  %-24s rows %d\n", name, s.Rows[d])
		rows += s.Rows[d]
		for _, r := range slices.Sorted(maps.Keys(s.DeadLetters[d])) {
			fmt.Fprintf(w, "  %-24s dead letters %-14s %d\n", name, r, s.DeadLetters[d][r])
			letters += s.DeadLetters[d][r]
		}
	}
	fmt.Fprintf(w, "  total                    rows %d, dead letters %d\n", rows, letters)
}

// undone is the consumers' handler, counting the batches whose delivery
// ended unfinished: the drain abandoned them at shutdown_timeout, and they
// are read again by the next run.
type undone struct {
	*metrics.Handler
	batches atomic.Int64
}

func (u *undone) Deliver(ctx context.Context, source string, records []record.Record) error {
	err := u.Handler.Deliver(ctx, source, records)
	if err != nil {
		u.batches.Add(1)
	}
	return err
}

func (u *undone) DeliverState(ctx context.Context, source string, state []byte, records []record.Record) ([]byte, error) {
	st, err := u.Handler.DeliverState(ctx, source, state, records)
	if err != nil {
		u.batches.Add(1)
	}
	return st, err
}

func (u *undone) DeliverDeferred(ctx context.Context, source string, state []byte, records []record.Record, durable func(error)) ([]byte, error) {
	st, err := u.Handler.DeliverDeferred(ctx, source, state, records, func(err error) {
		if err != nil {
			u.batches.Add(1)
		}
		durable(err)
	})
	if err != nil {
		u.batches.Add(1)
	}
	return st, err
}

// notDone is, for a bounded run that judged every source done, the error
// that it is not after all: a batch was abandoned at the drain (its shard
// looked done while the batch was in flight, say its idle mark could not be
// cleared), so exiting 0 with a summary would say done with records that are
// neither rows nor dead letters.
func (a *App) notDone() error {
	n := a.undone.batches.Load()
	if !a.finished.Load() || n == 0 {
		return nil
	}
	a.finished.Store(false)
	return fmt.Errorf("bounded run stopped with %d batches not delivered (abandoned after consumer.shutdown_timeout): the source is not done; run again, which reads them from the checkpoints", n)
}

// Finished reports whether Run ended because every source was bounded and
// done (not because of a signal or an error).
func (a *App) Finished() bool { return a.finished.Load() }

// bounded reports whether every source of the config is bounded: only then
// does a run end by itself.
func (a *App) bounded() bool {
	for _, s := range a.cfg.Sources {
		if !s.Bounded {
			return false
		}
	}
	return len(a.cfg.Sources) > 0
}

// ShowProgress makes a bounded run write a live line per source to w (a
// terminal) at every check, instead of a log line every 30 s.
func (a *App) ShowProgress(w io.Writer) { a.progress = w }

func (a *App) rowsSoFar() int {
	a.tally.mu.Lock()
	defer a.tally.mu.Unlock()
	n := 0
	for _, r := range a.tally.rows {
		n += r
	}
	return n
}

// watchBounded polls the lease tables until every source is done, then calls
// stop; meanwhile it shows the progress (shards done, how far behind this
// worker's shards are, rows/s).
func (a *App) watchBounded(ctx context.Context, stop func()) {
	minIdle := a.cfg.Sources[0].Idleness
	for _, s := range a.cfg.Sources {
		minIdle = min(minIdle, s.Idleness)
	}
	tick := time.NewTicker(min(max(minIdle/4, 200*time.Millisecond), 5*time.Second))
	defer tick.Stop()
	lastLog, lastRows := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		all, logNow := true, now.Sub(lastLog) >= 30*time.Second || a.progress != nil
		rows := a.rowsSoFar()
		rate := float64(rows-lastRows) / now.Sub(lastLog).Seconds()
		var line []string
		for i, c := range a.consumers {
			p, err := c.Finished(ctx, now)
			if err != nil {
				a.log.Warn("bounded source: cannot tell whether it is done; asking again", "source", a.cfg.Sources[i].Name, "err", err)
				all = false
				continue
			}
			behind := a.metrics.MaxMillisBehind(a.cfg.Sources[i].Name)
			switch {
			case a.progress != nil:
				line = append(line, fmt.Sprintf("%s: %d/%d shards done, %s behind", a.cfg.Sources[i].Name, p.Done, p.Shards, time.Duration(behind)*time.Millisecond))
			case logNow:
				a.log.Info("bounded source progress", "source", a.cfg.Sources[i].Name, "shards", p.Shards, "shards_done", p.Done,
					"millis_behind_latest", behind, "rows_per_second", rate)
			}
			all = all && p.Finished
		}
		if a.progress != nil {
			fmt.Fprintf(a.progress, "\r\x1b[K%s; %.0f rows/s", strings.Join(line, "; "), rate)
		}
		if logNow {
			lastLog, lastRows = now, rows
		}
		if all {
			if a.progress != nil {
				fmt.Fprintln(a.progress)
			}
			a.log.Info("every bounded source is done: stopping (drain, checkpoint, release leases)")
			a.finished.Store(true)
			stop()
			return
		}
	}
}
