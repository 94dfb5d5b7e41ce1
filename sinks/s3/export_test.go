package s3

import "github.com/kinesis-ingest/kinesis-ingest/record"

// RowSize is rowSize, for the buffer budget's test.
func RowSize(r *record.Row) int64 { return rowSize(r) }
