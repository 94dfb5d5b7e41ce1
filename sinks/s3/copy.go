package s3

import (
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/rowcopy"
)

// copyItems copies items' rows into memory of the sink's own (package
// rowcopy), with their positions.
func copyItems(items []item) []item {
	src := make([]*record.Row, len(items))
	for i := range items {
		src[i] = items[i].row
	}
	rows := rowcopy.Rows(src)
	out := make([]item, len(items))
	for i := range rows {
		p := items[i].pos
		p.seq = strings.TrimLeft(rows[i].Origin.SequenceNumber, "0")
		if p.seq == "" {
			p.seq = "0"
		}
		out[i] = item{row: &rows[i], pos: p}
	}
	return out
}
