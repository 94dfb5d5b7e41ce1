package s3

import "time"

// Observer is told what the sink does with S3, for metrics (package metrics
// implements it; Config.Observer). The sink calls it from the goroutines of
// concurrent Writes (one per shard), so an implementation must be safe for
// concurrent use, and return at once: it runs on the write path. dataset is
// Config.Dataset.
type Observer interface {
	// Uploaded: an object was created. bytes is its body's size, took the
	// whole upload (one PutObject, or every call of a multipart upload), and
	// multipart says which.
	Uploaded(dataset string, bytes int64, took time.Duration, multipart bool)
	// UploadFailed: an upload failed for another reason than a conflict or
	// the Write's context being cancelled (a refused call, a 5xx, a network
	// error). The Write returns the error and the pipeline retries it.
	UploadFailed(dataset string)
	// Conflict: a conditional create found its key taken (412, or 409
	// ConditionalRequestConflict): another writer (a zombie, a new owner, a
	// retry whose answer was lost) stored it first; the sink learns the
	// chain's head again. Not a failure: docs/lake.md "The chain".
	Conflict(dataset string)
	// Duplicates: n rows were dropped because their chain already held them
	// (a replay after a crash, a lease move or a reset).
	Duplicates(dataset string, n int)
	// Flushed: a chain's buffered rows went up as objects, for reason (one of
	// the Flush* constants). Called by deferred durability (rows buffered per
	// chain across Writes), once per flush of a chain.
	Flushed(dataset, reason string)
	// Buffered: the bytes of rows held in memory waiting for a flush changed
	// by delta: positive when rows are buffered, negative when they are
	// uploaded or dropped. The sum of the deltas is what is held now.
	Buffered(dataset string, delta int64)
}

// Why a chain's buffered rows were flushed: the values of Observer.Flushed's
// reason.
const (
	FlushSize     = "size"     // the chain's buffer reached its size bound (max_bytes)
	FlushAge      = "age"      // its oldest row waited its time bound (max_interval)
	FlushMemory   = "memory"   // the sink's buffers passed buffer_bytes: the largest go first
	FlushShutdown = "shutdown" // Close: the worker stops
	FlushAsked    = "asked"    // Flush: a shard handed over, ended or released, a full in-flight budget
	FlushWrite    = "write"    // Write, the synchronous contract: its chains at once
)

// NopObserver ignores everything; it is Config.Observer when nil.
type NopObserver struct{}

var _ Observer = NopObserver{}

func (NopObserver) Uploaded(string, int64, time.Duration, bool) {}
func (NopObserver) UploadFailed(string)                         {}
func (NopObserver) Conflict(string)                             {}
func (NopObserver) Duplicates(string, int)                      {}
func (NopObserver) Flushed(string, string)                      {}
func (NopObserver) Buffered(string, int64)                      {}
