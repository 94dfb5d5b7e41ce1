package leases

import "time"

// SetStatsTTL sets how long the fair-share scan is reused (tests use 0 to see
// other workers' leases at once).
func SetStatsTTL(t *Table, d time.Duration) {
	t.mu.Lock()
	t.statsTTL = d
	t.mu.Unlock()
}

// SetListingGrace sets how long a new Table refuses a child whose parent has
// no row before any ListActiveWorkers call.
func SetListingGrace(t *Table, d time.Duration) {
	t.mu.Lock()
	t.listingGrace = d
	t.mu.Unlock()
}
