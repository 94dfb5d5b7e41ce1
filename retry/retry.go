// Package retry holds the waiting that every retry loop of the worker does
// (the pipeline's sink and decode retries, the lease table's renewals and
// releases), so that a cancelled context ends each of them the same way.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits d, or until ctx is done; then it returns ctx's error. Its
// timer is stopped either way, so a cancelled wait leaves nothing behind.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Jitter spreads retries of many shards over [d/2, d), so that shards that
// failed together do not retry together.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
