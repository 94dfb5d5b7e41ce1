package pipeline

import (
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// JSONConverter is an optional interface of a Route's Schema (*schema.Schema
// has it): it converts a JSON record straight from its bytes, without the
// decoded value tree that decode and Convert go through.
//
// ok true promises exactly the fields Convert returns for the record as
// decoders/jsondec decodes it. ok false means only "take the general path":
// the pipeline then decodes the record and converts it as usual, which gives
// the row or the dead letter, with its reason (decode_error for invalid JSON,
// schema_error for valid JSON of the wrong shape) and message. So the fast
// path changes what a record costs, never what becomes of it.
//
// The pipeline uses it for a source whose Decoder is a *jsondec.Decoder and
// whose routes all have a JSONConverter schema and either no Where or a
// JSONMatcher one. A record that any of them declines takes the general path
// for every route.
type JSONConverter interface {
	ConvertJSON(data []byte) (fields []record.Field, ok bool)
}

// JSONMatcher is the same for a Route's Where (*where.Filter has it): ok true
// promises Match's answer, with no error, for the record as jsondec decodes
// it; ok false means "take the general path" (which also gives any error).
// ok true with match false also promises that data is valid JSON (a route
// that matches checks it in ConvertJSON).
type JSONMatcher interface {
	MatchJSON(data []byte) (match, ok bool)
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
		if _, ok := s.Decoder.(*jsondec.Decoder); !ok || len(s.Routes) == 0 {
			continue
		}
		routes := make([]jsonRoute, len(s.Routes))
		for i := range s.Routes {
			r := &s.Routes[i]
			c, ok := r.Schema.(JSONConverter)
			if !ok {
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

// rowsFromJSON adds rec's rows (record i of batchLen) straight from its
// bytes, and says whether any route took it; or, with ok false, adds nothing
// because a route declined: the record then takes the general path.
func (p *Pipeline) rowsFromJSON(routes []Route, fast []jsonRoute, rec *record.Record, i, batchLen int, bySink []*sinkBatch) (taken, ok bool) {
	type routeRow struct {
		route  int
		fields []record.Field
	}
	var buf [4]routeRow
	rows := buf[:0]
	for ri := range fast {
		r := &fast[ri]
		if r.where != nil {
			m, ok := p.matchJSON(r.where, rec)
			if !ok {
				return false, false
			}
			if !m {
				continue
			}
		}
		fields, ok := p.convertJSON(r.conv, rec)
		if !ok {
			return false, false
		}
		rows = append(rows, routeRow{ri, fields})
	}
	for _, row := range rows {
		sb := bySink[row.route]
		if sb.rows == nil {
			// Most records of a batch become rows: size for all of them
			// rather than growing (a Row is about 150 bytes).
			sb.rows = make([]record.Row, 0, batchLen)
			sb.recIdx = make([]int, 0, batchLen)
		}
		sb.rows = append(sb.rows, record.Row{Dataset: routes[row.route].Dataset, Origin: rec.Origin, Fields: row.fields})
		sb.recIdx = append(sb.recIdx, i)
	}
	return len(rows) > 0, true
}

// convertJSON and matchJSON turn a panic (a bug) into a decline: the general
// path then handles the record, with its own panic guard.
func (p *Pipeline) convertJSON(c JSONConverter, rec *record.Record) (fields []record.Field, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.fastPanic(r, rec)
			fields, ok = nil, false
		}
	}()
	return c.ConvertJSON(rec.Data)
}

func (p *Pipeline) matchJSON(m JSONMatcher, rec *record.Record) (match, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.fastPanic(r, rec)
			match, ok = false, false
		}
	}()
	return m.MatchJSON(rec.Data)
}

func (p *Pipeline) fastPanic(r any, rec *record.Record) {
	p.log.Error("JSON fast path panicked on a record; taking the general path", "source", rec.Origin.Source,
		"shard_id", rec.Origin.ShardID, "sequence_number", rec.Origin.SequenceNumber, "panic", fmt.Sprint(r))
}
