package schema

import (
	"strings"
	"time"

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
	metaLogGroup
	metaLogStream
	metaOwner
	metaEventID
	metaEventTimestamp
)

// metas are the metadata names, in documentation order, with the types a
// field reading each may have.
var metas = [...]struct {
	name  string
	m     meta
	kinds []Kind
	doc   string
	event bool // read from the record's LogEvent
}{
	{"$partition_key", metaPartitionKey, []Kind{KindStr}, "the partition key the producer gave", false},
	{"$shard_id", metaShardID, []Kind{KindStr}, "the shard the record was read from", false},
	{"$sequence_number", metaSequenceNumber, []Kind{KindStr}, "the sequence number Kinesis assigned (a decimal string of up to 128 bits; a KPL sub-record shares its parent's)", false},
	{"$arrival_time", metaArrivalTime, []Kind{KindDatetime}, "when Kinesis accepted the record (ApproximateArrivalTimestamp, millisecond precision)", false},
	{"$stream", metaStream, []Kind{KindStr}, "the stream's name (from the source's stream_arn)", false},
	{"$source", metaSource, []Kind{KindStr}, "the name of the config's source that read the record", false},
	{"$data", metaData, []Kind{KindBytes, KindStr}, "the record's payload as received (after decompression and KPL de-aggregation; a CloudWatch Logs event's message): bytes, or str when it is UTF-8", false},
	{"$log_group", metaLogGroup, []Kind{KindStr}, "format cloudwatch_logs: the log group of the event's envelope", true},
	{"$log_stream", metaLogStream, []Kind{KindStr}, "format cloudwatch_logs: the log stream of the event's envelope", true},
	{"$owner", metaOwner, []Kind{KindStr}, "format cloudwatch_logs: the AWS account id that owns the log data", true},
	{"$event_id", metaEventID, []Kind{KindStr}, "format cloudwatch_logs: the log event's id (a decimal string)", true},
	{"$event_timestamp", metaEventTimestamp, []Kind{KindDatetime}, "format cloudwatch_logs: the log event's timestamp (millisecond precision)", true},
}

// Metadata describes one name a field's ref may use to read the stream
// record's metadata instead of its payload.
type Metadata struct {
	Name  string // $partition_key, ...
	Types []Kind // the types a field reading it may declare
	Doc   string
	// LogEvent marks the names only a log event has (a record split from a
	// CloudWatch Logs envelope, record.Record.Event): a source of another
	// format has no value for them.
	LogEvent bool
}

// MetadataNames returns the record metadata a ref may read, in
// documentation order.
func MetadataNames() []Metadata {
	out := make([]Metadata, len(metas))
	for i, m := range metas {
		out[i] = Metadata{Name: m.name, Types: m.kinds, Doc: m.doc, LogEvent: m.event}
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
	e := r.Event
	if e == nil {
		return nil, false
	}
	switch m {
	case metaLogGroup:
		return e.LogGroup, true
	case metaLogStream:
		return e.LogStream, true
	case metaOwner:
		return e.Owner, true
	case metaEventID:
		return e.ID, true
	case metaEventTimestamp:
		return time.UnixMilli(e.Timestamp).UTC(), true
	}
	return nil, false
}

// convertMeta converts metadata field f of r.
func (f *field) convertMeta(r *record.Record) (any, *FieldError) {
	v, found := metaValue(f.meta, f.node.kind, r)
	switch {
	case !found && r != nil:
		return nil, ferr("the record is no CloudWatch Logs event, so it has no " + f.ref + " (read it from a source with format: cloudwatch_logs)")
	case !found:
		return nil, ferr("no stream record to read " + f.ref + " from (convert with the record: ConvertFrom)")
	}
	return f.node.convert(v)
}
