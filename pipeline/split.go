package pipeline

import (
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Splitter is an optional interface of a Source's Decoder (decoders/cwlogs
// has it): a stream record that carries several records of its own (a
// CloudWatch Logs envelope of log events) is split into them before
// anything else reads it. Each is then decoded, filtered, converted and
// routed as a record of its own, on the fast paths too, and is a row or a
// dead letter of its own: its Origin is its stream record's but for
// SubSequence, so a sink that de-duplicates on the origin does so per
// carried record.
type Splitter interface {
	// Split appends the records rec carries to dst. skip, when not "",
	// says rec carries none by design (a control message): it is counted
	// by that reason (Metrics.Skipped), and is neither row nor dead letter.
	// An error means rec is not valid in the format: it becomes one
	// decode_error dead letter, whole. Safe for concurrent use.
	Split(dst []record.Record, rec *record.Record) (out []record.Record, skip string, err error)
	// Letter is the Data of a carried record's dead letter: the record in
	// a form Split reads back as itself (in the same place), so that a
	// redrive of it works.
	Letter(rec *record.Record) []byte
}

// split replaces c.records by the records each carries. A record that is
// expired is taken out as the loop would (it is not opened); an invalid one,
// or one Split refuses, stays whole, marked Invalid, for the loop to
// dead-letter.
func (p *Pipeline) split(c *classified, sp Splitter, expiredBefore time.Time) {
	c.splitter = sp
	out, ok := splitBufs.Get()
	if !ok || cap(out) < len(c.records) {
		out = make([]record.Record, 0, 4*len(c.records))
	}
	for i := range c.records {
		rec := &c.records[i]
		if p.expire(c, rec, expiredBefore) {
			continue
		}
		if rec.Invalid != nil {
			out = append(out, *rec)
			continue
		}
		n := len(out)
		var skip string
		var err error
		out, skip, err = splitOnce(sp, out, rec)
		switch {
		case err != nil:
			whole := *rec
			whole.Invalid = err
			out = append(out[:n], whole)
		case skip != "":
			if c.splitSkipped == nil {
				c.splitSkipped = map[string]int{}
			}
			c.splitSkipped[skip]++
		}
	}
	c.records, c.split = out, true
}

// splitBufs holds split batches' records between batches (a freelist: see
// jsonBatches): a batch of envelopes becomes many more records, a few
// hundred kilobytes of them.
var splitBufs = freelist.New[[]record.Record](8)

// releaseSplit gives c's split records back, once no row or dead letter
// made from them is in use.
func (c *classified) releaseSplit() {
	if !c.split || cap(c.records) > maxPooledRows*8 {
		return
	}
	clear(c.records)
	splitBufs.Put(c.records[:0])
	c.records, c.split = nil, false
}

func splitOnce(sp Splitter, dst []record.Record, rec *record.Record) (out []record.Record, skip string, err error) {
	n := len(dst)
	defer func() {
		if r := recover(); r != nil {
			out, skip, err = dst[:n], "", stagePanic("splitter", r)
		}
	}()
	return sp.Split(dst, rec)
}

// letterData is what rec's dead letter holds: a carried record in its
// Splitter's form, any other as received.
func (c *classified) letterData(rec *record.Record) []byte {
	if rec.Event != nil && c.splitter != nil {
		return c.splitter.Letter(rec)
	}
	return rec.Data
}
