package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// Consumer counts what one source's consumer reports through its hooks
// (consumers/kcl.Hooks, which it implements without importing the consumer).
type Consumer struct {
	m      *Metrics
	source string
	// answered is when the source's lease table last answered (readiness).
	answered *atomic.Int64 // Unix nanoseconds; 0: never

	mu   sync.Mutex
	held map[string]bool
}

// Consumer returns the hooks of source's consumer.
func (m *Metrics) Consumer(source string) *Consumer {
	st, _ := m.leaseTables.LoadOrStore(source, new(atomic.Int64))
	return &Consumer{m: m, source: source, answered: st.(*atomic.Int64), held: map[string]bool{}}
}

// LeaseTableAnsweredAt is when the lease table of source last answered a
// call (zero if it never did).
func (m *Metrics) LeaseTableAnsweredAt(source string) time.Time {
	st, ok := m.leaseTables.Load(source)
	if !ok {
		return time.Time{}
	}
	ns := st.(*atomic.Int64).Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (c *Consumer) LeaseGained(shard string) {
	c.m.LeaseEvents.WithLabelValues(c.source, "gained").Inc()
	c.mu.Lock()
	c.held[shard] = true
	c.m.LeasesHeld.WithLabelValues(c.source).Set(float64(len(c.held)))
	c.mu.Unlock()
}

// LeaseLost is called whenever the shard's consumer here ends (shutdown, shard
// end, a steal, an expired lease). The shard's gauges go with it: a checkpoint
// time left behind would read as an ever older checkpoint.
func (c *Consumer) LeaseLost(shard string) {
	c.m.LeaseEvents.WithLabelValues(c.source, "lost").Inc()
	c.m.IteratorAge.DeleteLabelValues(c.source, shard)
	c.m.LastCheckpoint.DeleteLabelValues(c.source, shard)
	c.mu.Lock()
	delete(c.held, shard)
	c.m.LeasesHeld.WithLabelValues(c.source).Set(float64(len(c.held)))
	c.mu.Unlock()
}

func (c *Consumer) LeaseRenewed(string) {
	c.m.LeaseEvents.WithLabelValues(c.source, "renewed").Inc()
}

// Read also sets IteratorAge after an empty read: with no record to date,
// the best estimate of the age is how far behind the tip the read was (0
// once caught up). A non-empty read's age is set from its last record
// (Delivering). A negative millisBehind is unknown.
func (c *Consumer) Read(shard string, millisBehind float64, empty bool) {
	if millisBehind < 0 {
		return
	}
	c.m.MillisBehind.WithLabelValues(c.source, shard).Set(millisBehind)
	if empty {
		c.m.IteratorAge.WithLabelValues(c.source, shard).Set(millisBehind / 1000)
	}
}

func (c *Consumer) ReadTook(_ string, d time.Duration) {
	c.m.GetRecordsSeconds.WithLabelValues(c.source).Observe(d.Seconds())
}

func (c *Consumer) ShardGone(shard string) {
	c.m.MillisBehind.DeleteLabelValues(c.source, shard)
}

// Delivering sets the iterator age from the last record of a batch.
func (c *Consumer) Delivering(shard string, lastArrival time.Time) {
	c.m.ObserveIteratorAge(c.source, shard, lastArrival)
}

func (c *Consumer) Checkpointed(shard, result string, shardEnd bool) {
	c.m.Checkpoints.WithLabelValues(c.source, result).Inc()
	if result != "ok" {
		return
	}
	c.m.LastCheckpoint.WithLabelValues(c.source, shard).SetToCurrentTime()
	if shardEnd {
		c.m.LeaseEvents.WithLabelValues(c.source, "shard_end").Inc()
	}
}

func (c *Consumer) LeaseTableAnswered() {
	now := time.Now()
	c.answered.Store(now.UnixNano())
	c.m.LeaseTableLastAnswer.WithLabelValues(c.source).Set(float64(now.UnixNano()) / 1e9)
}

func (c *Consumer) LeaseTableFailed(op string) {
	c.m.LeaseTableErrors.WithLabelValues(c.source, op).Inc()
}

func (c *Consumer) LeasePass(ok bool, share, free, expired, claimed int) {
	c.m.LeasePasses.WithLabelValues(c.source).Inc()
	if !ok {
		return
	}
	c.m.LeaseShare.WithLabelValues(c.source).Set(float64(share))
	if free > 0 {
		c.m.LeasesTaken.WithLabelValues(c.source, "free").Add(float64(free))
	}
	if expired > 0 {
		c.m.LeasesTaken.WithLabelValues(c.source, "expired").Add(float64(expired))
	}
	if claimed > 0 {
		c.m.LeaseClaims.WithLabelValues(c.source).Add(float64(claimed))
	}
}

func (c *Consumer) ParentExpired() {
	c.m.ShardsExpired.WithLabelValues(c.source).Inc()
}

func (c *Consumer) Throttled(op, shard string) {
	c.m.KinesisThrottled.WithLabelValues(c.source, op, shard).Inc()
}

func (c *Consumer) LeaseTableThrottled(op string) {
	c.m.LeaseTableThrottled.WithLabelValues(c.source, op).Inc()
}

// Budget reports the worker's in-flight budget (consumers/kcl.BudgetHooks).
type Budget struct {
	held  interface{ Set(float64) }
	limit interface{ Set(float64) }
	wait  interface{ Add(float64) }
}

// Budget returns the in-flight budget's hooks.
func (m *Metrics) Budget() *Budget {
	return &Budget{held: m.InflightBytes.WithLabelValues(), limit: m.InflightLimit.WithLabelValues(), wait: m.InflightWait.WithLabelValues()}
}

func (b *Budget) Limit(n int64)          { b.limit.Set(float64(n)) }
func (b *Budget) Held(n int64)           { b.held.Set(float64(n)) }
func (b *Budget) Waited(d time.Duration) { b.wait.Add(d.Seconds()) }
