package avrodec

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// schemaCache holds a registry's writer schemas by the key records carry (a
// Confluent schema id, a Glue schema version id), for both registries.
//
// Hits read a copy-on-write map without a lock, since every record looks its
// schema up. A key is fetched once however many Decodes want it at the same
// time. A key the registry definitely does not have is remembered as missing
// for ttl, so that a stream of records naming it fails at once instead of
// asking for each. A failure that says nothing about the key (the registry
// down) is not remembered: the pipeline's retry of that record asks again.
type schemaCache[K comparable] struct {
	ttl time.Duration
	now func() time.Time

	m atomic.Pointer[map[K]*cached]

	mu      sync.Mutex
	missing map[K]missing
	calls   map[K]*call
}

// cached is a fetched key: its compiled schema, or why it is unusable (not
// Avro, references, invalid), which does not change for a key.
type cached struct {
	entry *schemaEntry
	err   string
}

type missing struct {
	until time.Time
	msg   string
}

// call is a fetch in flight that concurrent Decodes wait for.
type call struct {
	done chan struct{}
	c    *cached
	err  error
}

// missingError is what a fetch returns, and what get then returns for ttl,
// for a key the registry answered it does not have; msg is the registry's
// own word, if it said one.
type missingError struct{ msg string }

func (e *missingError) Error() string { return "not in the registry: " + e.msg }

func newSchemaCache[K comparable](ttl time.Duration, now func() time.Time) *schemaCache[K] {
	c := &schemaCache[K]{ttl: ttl, now: now, missing: map[K]missing{}, calls: map[K]*call{}}
	m := map[K]*cached{}
	c.m.Store(&m)
	return c
}

// peek returns k's cached schema, nil when k was not fetched or is unusable.
// It never fetches.
func (c *schemaCache[K]) peek(k K) *schemaEntry {
	return (*c.m.Load())[k].cachedEntry()
}

// get returns k's schema, calling fetch once for it when it is neither
// cached nor remembered as missing. fetch returns what to cache, a
// *missingError for a definite miss, or any other error (returned as it is,
// nothing remembered).
func (c *schemaCache[K]) get(k K, fetch func(K) (*cached, error)) (*cached, error) {
	if v, ok := (*c.m.Load())[k]; ok {
		return v, nil
	}
	c.mu.Lock()
	if v, ok := (*c.m.Load())[k]; ok {
		c.mu.Unlock()
		return v, nil
	}
	if m, ok := c.missing[k]; ok && c.now().Before(m.until) {
		c.mu.Unlock()
		return nil, &missingError{msg: m.msg}
	}
	cl, inFlight := c.calls[k]
	if inFlight {
		c.mu.Unlock()
		<-cl.done
		return cl.c, cl.err
	}
	cl = &call{done: make(chan struct{})}
	c.calls[k] = cl
	c.mu.Unlock()

	cl.c, cl.err = fetch(k)

	c.mu.Lock()
	delete(c.calls, k)
	if me, ok := cl.err.(*missingError); ok {
		c.pruneMissing()
		c.missing[k] = missing{until: c.now().Add(c.ttl), msg: me.msg}
	}
	c.mu.Unlock()
	if cl.err == nil {
		c.store(map[K]*cached{k: cl.c})
	}
	close(cl.done)
	return cl.c, cl.err
}

// store adds fetched keys, forgetting that they were missing.
func (c *schemaCache[K]) store(add map[K]*cached) {
	if len(add) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	m := make(map[K]*cached, len(old)+len(add))
	for k, v := range old {
		m[k] = v
	}
	for k, v := range add {
		m[k] = v
		delete(c.missing, k)
	}
	c.m.Store(&m)
}

// has reports whether k is cached (usable or not).
func (c *schemaCache[K]) has(k K) bool {
	_, ok := (*c.m.Load())[k]
	return ok
}

// pruneMissing drops expired misses once there are many; c.mu must be held.
func (c *schemaCache[K]) pruneMissing() {
	if len(c.missing) < maxMissing {
		return
	}
	now := c.now()
	for k, m := range c.missing {
		if !now.Before(m.until) {
			delete(c.missing, k)
		}
	}
}

// use returns c's schema, or a decode error saying why the schema of key
// (as what names it: "schema id 7") is unusable; off is where the key is in
// the payload.
func (c *cached) use(off int, what string) (*schemaEntry, error) {
	if c.err != "" {
		return nil, &Error{Offset: off, Msg: fmt.Sprintf("%s %s", what, c.err)}
	}
	return c.entry, nil
}

// cachedEntry is c's schema, nil for none (c nil, or a cached failure).
func (c *cached) cachedEntry() *schemaEntry {
	if c == nil || c.err != "" {
		return nil
	}
	return c.entry
}
