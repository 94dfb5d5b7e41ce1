package leases

import "fmt"

// RenewHeld renews this worker's lease on shardID, whose consumer runs in
// this process, as the KCL's own renewal would. It is for consumers whose
// library renews only between batches (the KCL's fan-out shard consumer
// renews inside its event loop, so a delivery longer than the lease duration
// would lose the lease): they call it while a batch is being delivered. It
// returns ErrLeaseLost if the lease is no longer this worker's.
func (t *Table) RenewHeld(shardID string) error {
	t.mu.Lock()
	l := t.running[shardID]
	t.mu.Unlock()
	if l == nil || l.status == nil {
		return fmt.Errorf("leases: renew shard %q in table %q: its consumer does not run in this worker: %w", shardID, t.table, ErrLeaseLost)
	}
	return t.GetLease(l.status, t.me)
}
