package file

import (
	"fmt"
	"strconv"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// rowEncoder writes row lines. The rows of a batch mostly share their field
// names and their source and shard, so it keeps their encodings from one row
// to the next instead of escaping them again per row (that escaping was about
// a third of the sink's CPU).
type rowEncoder struct {
	names         []encodedName
	source, shard string
	origin        []byte // `,"_source":…,"_shard_id":…,"_sequence_number":`
}

type encodedName struct {
	name string
	enc  []byte // `,"name":` (the comma left off for the first field)
}

// appendRow writes one row line: the fields in declaration order, then the
// origin columns.
func (e *rowEncoder) appendRow(b []byte, r *record.Row) ([]byte, error) {
	b = append(b, '{')
	for i, f := range r.Fields {
		if i == len(e.names) {
			e.names = append(e.names, encodedName{})
		}
		n := &e.names[i]
		if n.enc == nil || n.name != f.Name {
			n.name, n.enc = f.Name, append(jsonenc.AppendString(append(n.enc[:0], ','), f.Name), ':')
		}
		enc := n.enc
		if i == 0 {
			enc = enc[1:]
		}
		b = append(b, enc...)
		var err error
		if b, err = jsonenc.AppendValue(b, f.Value); err != nil {
			return b, fmt.Errorf("field %q: %w", f.Name, err)
		}
	}
	o := &r.Origin
	if e.origin == nil || o.Source != e.source || o.ShardID != e.shard {
		e.source, e.shard = o.Source, o.ShardID
		e.origin = append(e.origin[:0], `,"_source":`...)
		e.origin = jsonenc.AppendString(e.origin, o.Source)
		e.origin = append(e.origin, `,"_shard_id":`...)
		e.origin = jsonenc.AppendString(e.origin, o.ShardID)
		e.origin = append(e.origin, `,"_sequence_number":`...)
	}
	if len(r.Fields) > 0 {
		b = append(b, e.origin...)
	} else {
		b = append(b, e.origin[1:]...)
	}
	b = jsonenc.AppendString(b, o.SequenceNumber)
	b = append(b, `,"_subsequence":`...)
	b = strconv.AppendInt(b, int64(o.SubSequence), 10)
	b = append(b, `,"_arrival_time":`...)
	var err error
	if b, err = jsonenc.AppendTime(b, o.ArrivalTime); err != nil {
		return b, fmt.Errorf("arrival time: %w", err)
	}
	return append(b, '}', '\n'), nil
}

// appendChange writes one changelog line: appendRow's, with _op after
// _arrival_time. A delete carries only its key fields and timestamp (see
// record.Row.Delete), so its nil fields are left out.
func (e *rowEncoder) appendChange(b []byte, r *record.Row) ([]byte, error) {
	if r.Delete {
		kept := record.Row{Dataset: r.Dataset, Origin: r.Origin, Delete: true}
		for _, f := range r.Fields {
			if f.Value != nil {
				kept.Fields = append(kept.Fields, f)
			}
		}
		r = &kept
	}
	b, err := e.appendRow(b, r)
	if err != nil {
		return b, err
	}
	b = b[:len(b)-2] // appendRow's closing "}\n"
	if r.Delete {
		return append(b, `,"_op":"delete"}`+"\n"...), nil
	}
	return append(b, `,"_op":"upsert"}`+"\n"...), nil
}
