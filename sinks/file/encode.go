package file

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// appendRow writes one row line: the fields in declaration order, then the
// origin columns.
func appendRow(b []byte, r *record.Row) ([]byte, error) {
	b = append(b, '{')
	for i, f := range r.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, f.Name)
		b = append(b, ':')
		var err error
		if b, err = jsonenc.AppendValue(b, f.Value); err != nil {
			return b, fmt.Errorf("field %q: %w", f.Name, err)
		}
	}
	if len(r.Fields) > 0 {
		b = append(b, ',')
	}
	o := &r.Origin
	b = append(b, `"_source":`...)
	b = jsonenc.AppendString(b, o.Source)
	b = append(b, `,"_shard_id":`...)
	b = jsonenc.AppendString(b, o.ShardID)
	b = append(b, `,"_sequence_number":`...)
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

// appendDeadLetter writes one dead letter line.
func appendDeadLetter(b []byte, d *record.DeadLetter) ([]byte, error) {
	b = append(b, `{"source":`...)
	b = jsonenc.AppendString(b, d.Source)
	b = append(b, `,"stream_arn":`...)
	b = jsonenc.AppendString(b, d.StreamARN)
	b = append(b, `,"shard_id":`...)
	b = jsonenc.AppendString(b, d.ShardID)
	b = append(b, `,"sequence_number":`...)
	b = jsonenc.AppendString(b, d.SequenceNumber)
	b = append(b, `,"subsequence":`...)
	b = strconv.AppendInt(b, int64(d.SubSequence), 10)
	b = append(b, `,"partition_key":`...)
	b = jsonenc.AppendString(b, d.PartitionKey)
	b = append(b, `,"arrival_time":`...)
	var err error
	if b, err = jsonenc.AppendTime(b, d.ArrivalTime); err != nil {
		return b, fmt.Errorf("arrival time: %w", err)
	}
	if d.Dataset != "" {
		b = append(b, `,"dataset":`...)
		b = jsonenc.AppendString(b, d.Dataset)
	}
	b = append(b, `,"reason":`...)
	b = jsonenc.AppendString(b, string(d.Reason))
	b = append(b, `,"error":`...)
	b = jsonenc.AppendString(b, d.Error)
	b = append(b, `,"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, d.Data)
	return append(b, '"', '}', '\n'), nil
}
