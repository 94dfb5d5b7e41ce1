// Package freelist keeps a bounded number of values for reuse: a batch's
// buffers (encoded lines, rows, fields) from one batch to the next.
//
// Unlike a sync.Pool, a List is not emptied by the garbage collector. A
// worker reading at its fastest collects every 150-300 ms, about as often as
// one shard's batches come, so a sync.Pool was often empty by the time a
// shard's next batch asked, and its buffers were allocated and grown again:
// a quarter of a worker's allocations end to end. A List keeps at most Max
// values, so what it holds is bounded by Max times the largest value its
// callers put back (they keep outsized values out).
package freelist

import "sync"

// List is a bounded stack of values; its zero value keeps nothing. It is safe
// for concurrent use.
type List[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
}

// New returns a List that keeps at most n values (at least 1).
func New[T any](n int) *List[T] {
	return &List[T]{max: max(n, 1)}
}

// Get returns the value put back last, or ok false when none is kept.
func (l *List[T]) Get() (v T, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.items)
	if n == 0 {
		return v, false
	}
	v = l.items[n-1]
	var zero T
	l.items[n-1] = zero // keep no reference in the spare capacity
	l.items = l.items[:n-1]
	return v, true
}

// Put keeps v for a later Get, unless the List holds its maximum already;
// it reports whether v was kept.
func (l *List[T]) Put(v T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) >= l.max {
		return false
	}
	l.items = append(l.items, v)
	return true
}

// Len is the number of values kept.
func (l *List[T]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}
