package pipeline

import (
	"sync"

	"github.com/kinesis-ingest/kinesis-ingest/sinks"
)

// pending counts the deferred sinks' answers one attempt of a batch waits
// for, and tells the batch's durable once the attempt has finished and every
// answer is in.
type pending struct {
	mu       sync.Mutex
	waiting  int // Accepts whose durable has not been called
	finished bool
	err      error
	durable  func(error)
}

func newPending() *pending { return &pending{} }

// accept runs one Accept, counting its answer as awaited unless it returns
// an outage (nothing taken, no answer to come).
func (p *pending) accept(call func(durable func(error)) error) error {
	p.mu.Lock()
	p.waiting++
	p.mu.Unlock()
	err := call(p.answer)
	if err != nil {
		if _, refused := sinks.IsRejected(err); !refused {
			p.answer(nil)
		}
	}
	return err
}

func (p *pending) answer(err error) {
	p.mu.Lock()
	p.waiting--
	if err != nil && p.err == nil {
		p.err = err
	}
	fire, ferr := p.fire()
	p.mu.Unlock()
	if fire != nil {
		fire(ferr)
	}
}

// finish says the attempt wrote everything else: durable is told once the
// last Accept's answer is in (now, if every one is).
func (p *pending) finish(durable func(error)) {
	p.mu.Lock()
	p.finished, p.durable = true, durable
	fire, ferr := p.fire()
	p.mu.Unlock()
	if fire != nil {
		fire(ferr)
	}
}

// fire returns durable and its answer when it is due, once; p.mu is held.
func (p *pending) fire() (func(error), error) {
	if !p.finished || p.waiting > 0 || p.durable == nil {
		return nil, nil
	}
	f := p.durable
	p.durable = nil
	return f, p.err
}
