package pipeline

import (
	"fmt"
	"slices"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
)

// JSONConverter is an optional interface of a Route's Schema (*schema.Schema
// has it): it converts a JSON record straight from its scanned bytes, without
// the decoded value tree that decode and Convert go through, appending the
// fields to dst (the batch's rows share one slice).
//
// ok true promises exactly the fields ConvertFrom returns for the record as
// decoders/jsondec decodes it and rec.From, the stream record it was
// scanned from (the pipeline sets it with each scan). ok false means only "take the general path":
// the pipeline then decodes the record and converts it as usual, which gives
// the row or the dead letter, with its reason (decode_error for invalid JSON,
// schema_error for valid JSON of the wrong shape) and message. So the fast
// path changes what a record costs, never what becomes of it.
//
// The pipeline uses it for a source whose Decoder is a JSONScanner and
// whose routes all have a JSONConverter schema and either no Where or a
// JSONMatcher one. Each record is scanned once (JSONScanner.ScanJSON), and
// every route's where and conversion read that scan. A record that the scan
// or any route declines takes the general path for every route.
type JSONConverter interface {
	AppendJSON(dst []record.Field, rec *schema.JSONRecord) (fields []record.Field, ok bool)
}

// JSONScanner is an optional interface of a Source's Decoder
// (*jsondec.Decoder has it): it scans a record in place (jsondec.Record)
// instead of decoding it. true promises a JSON object whose members are
// those Decode's map holds; false means only "call Decode", which gives the
// value or the error.
type JSONScanner interface {
	ScanJSON(rec *jsondec.Record, data []byte) bool
}

// JSONMatcher is the same for a Route's Where (*where.Filter has it): ok true
// promises Match's answer, with no error, for the record as jsondec decodes
// it; ok false means "take the general path" (which also gives any error).
type JSONMatcher interface {
	MatchScanned(rec *schema.JSONRecord) (match, ok bool)
}

// jsonRoute is a route on the fast path.
type jsonRoute struct {
	conv  JSONConverter
	where JSONMatcher // nil: no where
}

// jsonPaths returns, per source that qualifies for the JSON fast path, its
// routes in route order.
func jsonPaths(sources map[string]*Source) map[*Source][]jsonRoute {
	out := map[*Source][]jsonRoute{}
	for _, s := range sources {
		if _, ok := s.Decoder.(JSONScanner); !ok || len(s.Routes) == 0 {
			continue
		}
		routes := make([]jsonRoute, len(s.Routes))
		for i := range s.Routes {
			r := &s.Routes[i]
			c, ok := r.Schema.(JSONConverter)
			if !ok || r.Changes != nil { // a change event's fields are in its row image
				routes = nil
				break
			}
			routes[i].conv = c
			if r.Where != nil {
				if routes[i].where, ok = r.Where.(JSONMatcher); !ok {
					routes = nil
					break
				}
			}
		}
		if routes != nil {
			out[s] = routes
		}
	}
	return out
}

// NamedDecoder is an optional interface of a Source's Decoder
// (*avrodec.Decoder has it): it decodes a record's top-level fields into
// vals, named by names, without building the map[string]any Decode returns.
// ok true promises the values Decode's map holds under those names; ok false
// means only "call Decode".
type NamedDecoder interface {
	DecodeNamed(data []byte, vals []any) (names []string, out []any, ok bool)
}

// NamedConverter is the same for a Route's Schema (*schema.Schema has it): ok
// true promises exactly the fields ConvertFrom returns for the map of names
// to vals and from, the stream record they were decoded from, appended to
// dst; ok false means "take the general path", which gives
// the row or the dead letter with its message.
//
// The pipeline uses the pair for a source whose Decoder is a NamedDecoder and
// whose routes all have a NamedConverter schema, no Where and no Changes: an
// Avro record's fields then go from its bytes to the batch's one slice of
// fields with no map in between (the map, its lookups and the garbage were
// about a third of an Avro record's CPU). A record that the decoder or any
// route declines takes the general path for every route.
type NamedConverter interface {
	AppendNamed(dst []record.Field, names []string, vals []any, from *record.Record) (fields []record.Field, ok bool)
}

// namedPaths returns, per source that qualifies for the named fast path,
// its routes' converters in route order.
func namedPaths(sources map[string]*Source) map[*Source][]NamedConverter {
	out := map[*Source][]NamedConverter{}
	for _, s := range sources {
		if _, ok := s.Decoder.(NamedDecoder); !ok || len(s.Routes) == 0 {
			continue
		}
		convs := make([]NamedConverter, len(s.Routes))
		for i := range s.Routes {
			r := &s.Routes[i]
			c, ok := r.Schema.(NamedConverter)
			if !ok || r.Where != nil || r.Changes != nil {
				convs = nil
				break
			}
			convs[i] = c
		}
		if convs != nil {
			out[s] = convs
		}
	}
	return out
}

// jsonBatch is the fast path's state for one batch: the scan, reused from
// record to record, and the one slice all the batch's rows' fields are in.
// Batches reuse them (jsonBatches) once their rows are written: a batch's
// fields and boxed values, about 400 bytes a record, were the hot path's
// garbage, and collecting it, with the write barriers on every field stored
// while the collector ran, cost about a tenth of its CPU.
type jsonBatch struct {
	rec    schema.JSONRecord
	vals   []any // the named path's values of the record at hand
	fields []record.Field
	// width is, per route, the fields of its last row: room for that many
	// per remaining record is made at once, so the slice grows about once
	// per batch rather than once per row.
	width []int
}

// jsonBatches holds the batches' scan state, fields and boxed values
// between batches: a freelist, not a sync.Pool, which the garbage collector
// emptied between one shard's batches (see internal/kit/freelist). Eight, about
// the batches a worker decodes at once; outsized ones are not kept.
var jsonBatches = freelist.New[*jsonBatch](8)

// release gives js back for another batch, once no row made from it is in
// use: every sink Write of its batch has returned.
func (js *jsonBatch) release() {
	if cap(js.fields) > maxPooledFields {
		return
	}
	clear(js.fields) // keep no record's text alive from the pool
	js.fields = js.fields[:0]
	clear(js.vals)
	js.vals = js.vals[:0]
	js.width = js.width[:0]
	js.rec.Reset()
	// The next batch may be another shard's, and this one's memory reused.
	js.rec.Forget()
	js.rec.From = nil
	jsonBatches.Put(js)
}

// maxPooledFields keeps an outsized batch's fields out of the pool.
const maxPooledFields = 1 << 16

// rowsFromJSON adds rec's rows (record i of batchLen) straight from its
// bytes, and says whether any route took it; or, with ok false, adds nothing
// because the scan or a route declined: the record then takes the general
// path. A row the route's Window drops is counted through drop once the
// record is known to stay on this path.
func (p *Pipeline) rowsFromJSON(c *classified, fast []jsonRoute, rec *record.Record, i int) (taken, ok bool) {
	js, routes, batchLen := c.js, c.src.Routes, len(c.records)
	if !c.scanner.ScanJSON(&js.rec.Record, rec.Data) {
		return false, false
	}
	js.rec.From = rec
	js.widths(len(fast))
	var buf [4]routeRow
	rows := buf[:0]
	mark := len(js.fields)
	for ri := range fast {
		r := &fast[ri]
		if r.where != nil {
			m, ok := p.matchJSON(r.where, &js.rec, rec)
			if !ok {
				js.fields = js.fields[:mark]
				return false, false
			}
			if !m {
				continue
			}
		}
		js.room(ri, len(fast), i, batchLen)
		start := len(js.fields)
		fields, ok := p.convertJSON(r.conv, js.fields, &js.rec, rec)
		if !ok {
			js.fields = js.fields[:mark]
			return false, false
		}
		rows = append(rows, js.took(ri, start, fields, &routes[ri]))
	}
	c.keep(rows, rec, i)
	return len(rows) > 0, true
}

// rowsFromNamed is rowsFromJSON for a source on the named path: the record
// decoded by dec into its top-level fields, each route converting those.
func (p *Pipeline) rowsFromNamed(c *classified, convs []NamedConverter, rec *record.Record, i int) (taken, ok bool) {
	js, routes, batchLen := c.js, c.src.Routes, len(c.records)
	names, vals, ok := c.namedDec.DecodeNamed(rec.Data, js.vals[:0])
	js.vals = vals
	if !ok {
		return false, false
	}
	js.widths(len(convs))
	var buf [4]routeRow
	rows := buf[:0]
	mark := len(js.fields)
	for ri, c := range convs {
		js.room(ri, len(convs), i, batchLen)
		start := len(js.fields)
		fields, ok := p.convertNamed(c, js.fields, names, vals, rec)
		if !ok {
			js.fields = js.fields[:mark]
			return false, false
		}
		rows = append(rows, js.took(ri, start, fields, &routes[ri]))
	}
	c.keep(rows, rec, i)
	return len(rows) > 0, true
}

// routeRow is a route's row of the record at hand, in jsonBatch.fields.
type routeRow struct {
	route      int
	start, end int
	drop       string // the Window's reason to drop it, if any
}

func (js *jsonBatch) widths(routes int) {
	if len(js.width) != routes {
		js.width = append(js.width[:0], make([]int, routes)...)
	}
}

// room makes room in js.fields for the rows of the records left, at the
// width of route ri's last row.
func (js *jsonBatch) room(ri, routes, i, batchLen int) {
	if w := js.width[ri]; cap(js.fields)-len(js.fields) < w {
		js.fields = slices.Grow(js.fields, w*(batchLen-i)*(routes-ri))
	}
}

// took records that route r (index ri) converted fields[start:].
func (js *jsonBatch) took(ri, start int, fields []record.Field, r *Route) routeRow {
	js.fields = fields
	js.width[ri] = len(fields) - start
	return routeRow{ri, start, len(fields), r.Window.Reason(fields[start:])}
}

// keep hands the rows of record i to their sinks' batches, or counts them
// as dropped by their Window, once every route has converted the record.
func (c *classified) keep(rows []routeRow, rec *record.Record, i int) {
	for _, row := range rows {
		if row.drop != "" {
			c.drop(row.route, row.drop)
			continue
		}
		// The full slice expression keeps a sink that appends to a row's
		// fields from writing over the next row's.
		sb := c.sinkFor(row.route)
		sb.rows = append(sb.rows, record.Row{Dataset: c.src.Routes[row.route].Dataset, Origin: rec.Origin,
			Fields: c.js.fields[row.start:row.end:row.end]})
		sb.recIdx = append(sb.recIdx, i)
	}
}

// convertJSON, convertNamed and matchJSON turn a panic (a bug) into a
// decline: the general path then handles the record, with its own panic
// guard.
func (p *Pipeline) convertJSON(c JSONConverter, dst []record.Field, js *schema.JSONRecord, rec *record.Record) (fields []record.Field, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.fastPanic(r, rec)
			fields, ok = nil, false
		}
	}()
	return c.AppendJSON(dst, js)
}

func (p *Pipeline) convertNamed(c NamedConverter, dst []record.Field, names []string, vals []any, rec *record.Record) (fields []record.Field, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.fastPanic(r, rec)
			fields, ok = nil, false
		}
	}()
	return c.AppendNamed(dst, names, vals, rec)
}

func (p *Pipeline) matchJSON(m JSONMatcher, js *schema.JSONRecord, rec *record.Record) (match, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.fastPanic(r, rec)
			match, ok = false, false
		}
	}()
	return m.MatchScanned(js)
}

func (p *Pipeline) fastPanic(r any, rec *record.Record) {
	p.log.Error("fast path panicked on a record; taking the general path", "source", rec.Origin.Source,
		"shard_id", rec.Origin.ShardID, "sequence_number", rec.Origin.SequenceNumber, "panic", fmt.Sprint(r))
}
