package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// stageTable is the per-connection temporary table batches are copied into.
const stageTable = "kinesis_ingest_stage"

// errClosed is returned by Write after Close.
var errClosed = errors.New("postgres sink: Write called after Close")

// prepared is one row or dead letter converted for COPY.
type prepared struct {
	vals []any
	size int64
	key  string // shard/sequence/subsequence, for messages
}

// counts is what a transaction did with its rows: inserted (for a keyed
// table: upserted) and, for a keyed table, deleted (tombstones set). The
// rest were already there (or, keyed, older than the key's row).
type counts struct{ inserted, deleted int64 }

func (c *counts) add(o counts) { c.inserted += o.inserted; c.deleted += o.deleted }

// rowErr is a row the table refused, by its index in the caller's batch.
type rowErr struct {
	idx int
	key string
	err error
}

// request is one Write waiting for the engine.
type request struct {
	rows []prepared
	idx  []int // the caller's index of each row
	size int64
	enq  time.Time
	done chan struct{}

	// Set before done is closed.
	refused []rowErr
	err     error

	// Under engine.mu.
	grp       *group
	abandoned bool
}

func (r *request) big(c *Config) bool {
	return len(r.rows) > c.BatchRows || r.size > c.BatchBytes
}

// group is the Writes committed together: several small ones in one
// transaction, or one large one in several.
type group struct {
	reqs   []*request
	ctx    context.Context
	cancel context.CancelFunc
	live   int // requests whose caller still waits; under engine.mu
}

// engine commits batches for one sink: Writes queue requests; a dispatcher
// forms groups when a connection is free and runs each group's transactions
// on its own goroutine, at most MaxConns at once.
type engine struct {
	cfg    Config
	spec   *tableSpec
	log    *slog.Logger
	pcfg   *pgxpool.Config
	red    redactor
	create bool

	initMu sync.Mutex
	pool   atomic.Pointer[pgxpool.Pool]

	insertSQL string
	cols      []string

	mu      sync.Mutex
	queue   []*request
	notify  chan struct{} // closed and replaced when the queue grows or closing starts
	closing bool

	slots      chan struct{}
	inflight   sync.WaitGroup
	stopped    chan struct{}
	base       context.Context
	baseCancel context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
}

func newEngine(ctx context.Context, cfg Config, spec *tableSpec, log *slog.Logger) (*engine, error) {
	if log == nil {
		log = slog.Default()
	}
	pcfg, err := poolConfig(cfg.DSN, cfg.MaxConns)
	if err != nil {
		return nil, err
	}
	e := &engine{
		cfg:    cfg,
		spec:   spec,
		log:    log.With("sink_kind", "postgres", "table", spec.display),
		pcfg:   pcfg,
		red:    newRedactor(pcfg),
		create: cfg.CreateTable,
		notify: make(chan struct{}),
		slots:  make(chan struct{}, cfg.MaxConns),
		cols:   spec.colNames(),
	}
	qcols := quoteList(e.cols)
	if spec.keyed {
		e.insertSQL = spec.upsertSQL()
	} else {
		e.insertSQL = fmt.Sprintf("WITH batch AS (DELETE FROM pg_temp.%s RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM batch ON CONFLICT (%s) DO NOTHING",
			pgx.Identifier{stageTable}.Sanitize(), qcols, spec.quoted(), qcols, qcols, quoteList(spec.key))
	}
	e.base, e.baseCancel = context.WithCancel(context.Background())

	if err := e.init(ctx); err != nil {
		if !unreachable(err) {
			e.baseCancel()
			return nil, err
		}
		e.log.Warn("postgres sink: database unreachable at start; the table is checked (and created) at the first write, which is retried until the database is up",
			"err", err)
	}
	e.stopped = make(chan struct{})
	go e.run()
	return e, nil
}

// unreachable reports whether err means the server could not be reached (or
// is not accepting connections yet), as opposed to refusing us.
func unreachable(err error) bool {
	var te *TableError
	if errors.As(err, &te) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"), strings.HasPrefix(pe.Code, "53"):
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

// init connects, creates or checks the table and opens the pool. It is
// retried by every Write until it succeeds once.
func (e *engine) init(ctx context.Context) error {
	if e.pool.Load() != nil {
		return nil
	}
	e.initMu.Lock()
	defer e.initMu.Unlock()
	if e.pool.Load() != nil {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, e.pcfg.ConnConfig.Copy())
	if err != nil {
		return e.red.err(fmt.Errorf("postgres sink: connect: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	info, created, err := e.spec.ensure(ctx, conn, e.create)
	if err != nil {
		return e.red.err(fmt.Errorf("postgres sink: %w", err))
	}
	if created {
		e.log.Info("postgres sink: created table", "columns", len(e.spec.cols))
	}
	pc := e.pcfg.Copy()
	stage := e.spec.stageSQL(info)
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// Acknowledged means durable: never run with synchronous_commit off
		// (a stronger setting, such as remote_apply, is kept).
		if _, err := c.Exec(ctx, "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, stage)
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), pc)
	if err != nil {
		return e.red.err(fmt.Errorf("postgres sink: %w", err))
	}
	e.pool.Store(pool)
	return nil
}

// write queues prepared rows and waits until they are committed.
func (e *engine) write(ctx context.Context, rows []prepared, idx []int) ([]rowErr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &request{rows: rows, idx: idx, enq: time.Now(), done: make(chan struct{})}
	for i := range rows {
		r.size += rows[i].size
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, errClosed
	}
	e.queue = append(e.queue, r)
	close(e.notify)
	e.notify = make(chan struct{})
	e.mu.Unlock()

	select {
	case <-r.done:
		return r.refused, r.err
	case <-ctx.Done():
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-r.done:
		return r.refused, r.err
	default:
	}
	if r.grp == nil {
		for i, q := range e.queue {
			if q == r {
				e.queue = append(e.queue[:i], e.queue[i+1:]...)
				break
			}
		}
		return nil, ctx.Err()
	}
	// Already taken: it may still commit ("promises nothing"). Once no
	// caller of the group waits, its transaction is cancelled.
	if !r.abandoned {
		r.abandoned = true
		r.grp.live--
		if r.grp.live == 0 && r.grp.cancel != nil {
			r.grp.cancel()
		}
	}
	return nil, ctx.Err()
}

func (e *engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// close commits what is queued, waits for transactions in flight and closes
// the pool.
func (e *engine) close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closing = true
		close(e.notify)
		e.notify = make(chan struct{})
		e.mu.Unlock()
		<-e.stopped
		e.baseCancel()
		if p := e.pool.Load(); p != nil {
			p.Close()
		}
	})
	return e.closeErr
}

func (e *engine) run() {
	defer close(e.stopped)
	for {
		e.mu.Lock()
		for len(e.queue) == 0 {
			if e.closing {
				e.mu.Unlock()
				e.inflight.Wait()
				return
			}
			ch := e.notify
			e.mu.Unlock()
			<-ch
			e.mu.Lock()
		}
		e.mu.Unlock()
		e.slots <- struct{}{} // a connection is free
		g := e.gather()
		if g == nil {
			<-e.slots
			continue
		}
		e.inflight.Add(1)
		go func() {
			defer e.inflight.Done()
			defer func() { <-e.slots }()
			e.commitGroup(g)
		}()
	}
}

// gather takes queued requests into a group: one large request alone, or
// small ones up to BatchRows/BatchBytes. With a BatchInterval it waits, up to
// the interval after the first request's arrival, for more to fill the group.
func (e *engine) gather() *group {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return nil
	}
	g := &group{}
	var rows int
	var size int64
	take := func() (full bool) {
		for len(e.queue) > 0 {
			r := e.queue[0]
			if len(g.reqs) > 0 && (r.big(&e.cfg) || rows+len(r.rows) > e.cfg.BatchRows || size+r.size > e.cfg.BatchBytes) {
				return true
			}
			e.queue = e.queue[1:]
			r.grp = g
			g.reqs = append(g.reqs, r)
			g.live++
			rows += len(r.rows)
			size += r.size
			if r.big(&e.cfg) {
				return true
			}
		}
		return rows >= e.cfg.BatchRows || size >= e.cfg.BatchBytes
	}
	full := take()
	if e.cfg.BatchInterval > 0 {
		deadline := g.reqs[0].enq.Add(e.cfg.BatchInterval)
		for !full && !e.closing {
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			ch := e.notify
			e.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ch:
			case <-t.C:
			}
			t.Stop()
			e.mu.Lock()
			full = take()
		}
	}
	// Drop requests whose callers gave up while the group was forming.
	kept := g.reqs[:0]
	for _, r := range g.reqs {
		if !r.abandoned {
			kept = append(kept, r)
		}
	}
	g.reqs = kept
	if len(g.reqs) == 0 {
		return nil
	}
	g.ctx, g.cancel = context.WithTimeout(e.base, e.cfg.Timeout)
	return g
}

// commitGroup commits a group's rows in transactions of at most BatchRows /
// BatchBytes, in order, and hands every request its result.
func (e *engine) commitGroup(g *group) {
	defer g.cancel()
	type owner struct{ req, row int }
	var rows []prepared
	var owners []owner
	for ri, r := range g.reqs {
		for i := range r.rows {
			rows = append(rows, r.rows[i])
			owners = append(owners, owner{ri, i})
		}
	}
	err := e.init(g.ctx)
	var pool *pgxpool.Pool
	if err == nil {
		pool = e.pool.Load()
	}
	var total int64
	var done counts
	var refused []rowErr
	for start := 0; err == nil && start < len(rows); {
		end, size := start, int64(0)
		for end < len(rows) && (end == start || end-start < e.cfg.BatchRows && size+rows[end].size <= e.cfg.BatchBytes) {
			size += rows[end].size
			end++
		}
		var n counts
		var bad []rowErr
		n, bad, err = e.commitChunk(g.ctx, pool, rows[start:end])
		if err != nil {
			break
		}
		for _, b := range bad {
			b.idx += start
			refused = append(refused, b)
		}
		done.add(n)
		total += int64(end - start)
		start = end
	}
	if err != nil {
		err = e.red.err(e.explain(err))
	} else {
		dups := total - done.inserted - done.deleted - int64(len(refused))
		if e.spec.keyed {
			if e.cfg.OnChanges != nil {
				e.cfg.OnChanges(int(done.inserted), int(done.deleted), int(dups))
			}
			if dups > 0 {
				e.log.Debug("postgres sink: changes older than their key's row changed nothing (replays, disorder, several changes of a key in one batch)", "older", dups)
			}
		} else if dups > 0 {
			e.log.Info("postgres sink: skipped "+e.spec.what+" already in the table (records read again after a restart, a crash or a lease move)", "skipped", dups)
			if e.cfg.OnDuplicates != nil {
				e.cfg.OnDuplicates(int(dups))
			}
		}
		if len(refused) > 0 {
			e.log.Warn("postgres sink: the table refused "+e.spec.what+"; they become sink_rejected dead letters", "refused", len(refused), "first", refused[0].err)
		}
	}
	perReq := make([][]rowErr, len(g.reqs))
	for _, b := range refused {
		o := owners[b.idx]
		r := g.reqs[o.req]
		perReq[o.req] = append(perReq[o.req], rowErr{idx: r.idx[o.row], key: b.key, err: b.err})
	}
	for i, r := range g.reqs {
		r.refused, r.err = perReq[i], err
		close(r.done)
	}
}

// explain wraps a transaction error for the caller (who retries it).
func (e *engine) explain(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("postgres sink: table %s: transaction did not finish within %v (a lock held by another session, or the server hangs): %w", e.spec.display, e.cfg.Timeout, err)
	}
	return fmt.Errorf("postgres sink: table %s: %w (the %s of this Write were not acknowledged; the Write is safe to retry)", e.spec.display, err, e.spec.what)
}

// commitChunk runs one transaction, on a pooled connection. A connection
// that turns out dead before anything was sent (the server restarted since
// it was last used) is replaced once.
func (e *engine) commitChunk(ctx context.Context, pool *pgxpool.Pool, rows []prepared) (counts, []rowErr, error) {
	for attempt := 1; ; attempt++ {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return counts{}, nil, err
		}
		n, bad, err := e.txChunk(ctx, c.Conn(), rows)
		if err != nil && !c.Conn().IsClosed() && c.Conn().PgConn().TxStatus() != 'I' {
			// Never hand back a connection inside a transaction.
			c.Conn().PgConn().Close(context.Background())
		}
		c.Release()
		if err != nil && attempt == 1 && pgconn.SafeToRetry(err) && ctx.Err() == nil {
			continue
		}
		return n, bad, err
	}
}

// txChunk copies rows into the stage table and moves them into the table,
// skipping keys already there, in one transaction. If the server refuses a
// value (a data error), it finds the refused rows by bisection inside
// savepoints, in a second transaction that commits the rest.
// begin starts a write transaction with every constraint checked at once: a
// DEFERRABLE INITIALLY DEFERRED constraint would otherwise fail only at
// COMMIT, where the refused row cannot be found by bisecting (releasing a
// savepoint checks nothing), and the same batch would be retried forever.
func begin(ctx context.Context, conn *pgx.Conn) (pgx.Tx, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

func (e *engine) txChunk(ctx context.Context, conn *pgx.Conn, rows []prepared) (counts, []rowErr, error) {
	all := make([]int, len(rows))
	for i := range all {
		all[i] = i
	}
	tx, err := begin(ctx, conn)
	if err != nil {
		return counts{}, nil, err
	}
	n, err := e.load(ctx, tx, rows, all)
	if err == nil {
		if err = tx.Commit(ctx); err == nil {
			return n, nil, nil
		}
		return counts{}, nil, err
	}
	_ = tx.Rollback(ctx)
	if !dataError(err) {
		return counts{}, nil, err
	}

	tx, err2 := begin(ctx, conn)
	if err2 != nil {
		return counts{}, nil, err2
	}
	b := bisector{e: e, tx: tx, rows: rows}
	if err := b.run(ctx, all, err); err != nil {
		_ = tx.Rollback(ctx)
		return counts{}, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return counts{}, nil, err
	}
	return b.done, b.bad, nil
}

// load copies rows[seg] into the stage table and moves them on; it returns
// what they did (see counts).
func (e *engine) load(ctx context.Context, tx pgx.Tx, rows []prepared, seg []int) (counts, error) {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{stageTable}, e.cols, pgx.CopyFromSlice(len(seg), func(i int) ([]any, error) {
		return rows[seg[i]].vals, nil
	}))
	if err != nil {
		return counts{}, err
	}
	if e.spec.keyed {
		var c counts
		if err := tx.QueryRow(ctx, e.insertSQL).Scan(&c.inserted, &c.deleted); err != nil {
			return counts{}, err
		}
		return c, nil
	}
	tag, err := tx.Exec(ctx, e.insertSQL)
	if err != nil {
		return counts{}, err
	}
	return counts{inserted: tag.RowsAffected()}, nil
}

// dataError reports whether the server refused a value: SQLSTATE class 22
// (data exception: out of range, bad encoding, too long for varchar, ...),
// 23 (integrity constraint: NOT NULL, CHECK, foreign key, a unique index
// other than the key, which ON CONFLICT does not cover) or 54000 (a value too
// large). Anything else is an outage or a problem of the table as a whole.
func dataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || pe.Code == "54000"
}

type bisector struct {
	e    *engine
	tx   pgx.Tx
	rows []prepared
	done counts
	bad  []rowErr
}

// run loads seg, known to fail with segErr, by halves, each in a savepoint,
// down to the single rows that fail.
func (b *bisector) run(ctx context.Context, seg []int, segErr error) error {
	if len(seg) == 1 {
		b.bad = append(b.bad, rowErr{idx: seg[0], key: b.rows[seg[0]].key, err: refusal(segErr)})
		return nil
	}
	mid := len(seg) / 2
	for _, half := range [][]int{seg[:mid], seg[mid:]} {
		if _, err := b.tx.Exec(ctx, "SAVEPOINT kinesis_ingest"); err != nil {
			return err
		}
		n, err := b.e.load(ctx, b.tx, b.rows, half)
		if err == nil {
			if _, err := b.tx.Exec(ctx, "RELEASE SAVEPOINT kinesis_ingest"); err != nil {
				return err
			}
			b.done.add(n)
			continue
		}
		if !dataError(err) {
			return err
		}
		if _, err := b.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT kinesis_ingest; RELEASE SAVEPOINT kinesis_ingest"); err != nil {
			return err
		}
		if err := b.run(ctx, half, err); err != nil {
			return err
		}
	}
	return nil
}

// refusal is the error a refused row's dead letter carries.
func refusal(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("PostgreSQL refused the value: %s (SQLSTATE %s)", pe.Message, pe.Code)
		if pe.ColumnName != "" {
			msg += ", column " + pe.ColumnName
		}
		if pe.Detail != "" {
			msg += ": " + pe.Detail
		}
		return errors.New(msg)
	}
	return err
}

// ping checks that the server answers (opening the pool first if a Write has
// not yet managed to).
func (e *engine) ping(ctx context.Context) error {
	if err := e.init(ctx); err != nil {
		return err
	}
	if err := e.pool.Load().Ping(ctx); err != nil {
		return e.red.err(fmt.Errorf("postgres sink: ping: %w", err))
	}
	return nil
}
