package schema

import (
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// meta is the record metadata a field reads (its ref is a metadata name),
// metaNone for a field read from the payload.
type meta uint8

const (
	metaNone meta = iota
	metaPartitionKey
	metaShardID
	metaSequenceNumber
	metaArrivalTime
	metaStream
	metaSource
	metaData
)

// metas are the metadata names, in documentation order, with the types a
// field reading each may have.
var metas = [...]struct {
	name  string
	m     meta
	kinds []Kind
	doc   string
}{
	{"$partition_key", metaPartitionKey, []Kind{KindStr}, "the partition key the producer gave"},
	{"$shard_id", metaShardID, []Kind{KindStr}, "the shard the record was read from"},
	{"$sequence_number", metaSequenceNumber, []Kind{KindStr}, "the sequence number Kinesis assigned (a decimal string of up to 128 bits; a KPL sub-record shares its parent's)"},
	{"$arrival_time", metaArrivalTime, []Kind{KindDatetime}, "when Kinesis accepted the record (ApproximateArrivalTimestamp, millisecond precision)"},
	{"$stream", metaStream, []Kind{KindStr}, "the stream's name (from the source's stream_arn)"},
	{"$source", metaSource, []Kind{KindStr}, "the name of the config's source that read the record"},
	{"$data", metaData, []Kind{KindBytes, KindStr}, "the record's payload as received (after decompression and KPL de-aggregation): bytes, or str when it is UTF-8"},
}

// Metadata describes one name a field's ref may use to read the stream
// record's metadata instead of its payload.
type Metadata struct {
	Name  string // $partition_key, ...
	Types []Kind // the types a field reading it may declare
	Doc   string
}

// MetadataNames returns the record metadata a ref may read, in
// documentation order.
func MetadataNames() []Metadata {
	out := make([]Metadata, len(metas))
	for i, m := range metas {
		out[i] = Metadata{Name: m.name, Types: m.kinds, Doc: m.doc}
	}
	return out
}

// IsMetadataRef reports whether ref reads record metadata: it is exactly
// one of the metadata names. Any other ref, $-prefixed ones included
// (["$odd"], a Debezium envelope's $ts_ms), reads the payload.
func IsMetadataRef(ref string) bool { return lookupMeta(ref) != metaNone }

func lookupMeta(ref string) meta {
	if !strings.HasPrefix(ref, "$") {
		return metaNone
	}
	for _, m := range metas {
		if m.name == ref {
			return m.m
		}
	}
	return metaNone
}

func metaNamesList() string {
	names := make([]string, len(metas))
	for i, m := range metas {
		names[i] = m.name
	}
	return strings.Join(names, ", ")
}

// checkMeta reports a field reading metadata m whose type t cannot hold it.
func (c *compiler) checkMeta(p string, sp *FieldSpec, m meta, t Type) {
	e := metas[m-1]
	for _, k := range e.kinds {
		if t.Kind == k {
			return
		}
	}
	want := make([]string, len(e.kinds))
	for i, k := range e.kinds {
		want[i] = "type: " + k.String()
	}
	c.errf(p+".type", "field %q reads %s, which is %s, not %s; declare %s", sp.Name, e.name,
		strings.Join(kindList(e.kinds), " or "), t, strings.Join(want, " or "))
}

func kindList(ks []Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String()
	}
	return out
}

// metaValue is the value of metadata m of r for a field of kind k, as a
// decoder would give it (convertValue then checks and converts it). found
// is false without a record: a value converted without its stream record
// (Convert, ConvertJSON) has no metadata.
func metaValue(m meta, k Kind, r *record.Record) (v any, found bool) {
	if r == nil {
		return nil, false
	}
	o := &r.Origin
	switch m {
	case metaPartitionKey:
		return o.PartitionKey, true
	case metaShardID:
		return o.ShardID, true
	case metaSequenceNumber:
		return o.SequenceNumber, true
	case metaArrivalTime:
		return o.ArrivalTime, true
	case metaStream:
		return o.Stream(), true
	case metaSource:
		return o.Source, true
	case metaData:
		if k == KindStr {
			return string(r.Data), true
		}
		if r.Data == nil {
			return []byte{}, true // an empty record is empty bytes, not null
		}
		return r.Data, true
	}
	return nil, false
}

// convertMeta converts metadata field f of r.
func (f *field) convertMeta(r *record.Record) (any, *FieldError) {
	v, found := metaValue(f.meta, f.node.kind, r)
	if !found {
		return nil, ferr("no stream record to read " + f.ref + " from (convert with the record: ConvertFrom)")
	}
	return f.node.convert(v)
}
