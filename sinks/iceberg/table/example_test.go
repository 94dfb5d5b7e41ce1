package table_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
)

// An append commit: a manifest of the new data files, a manifest list of
// the snapshot, and the next metadata, which the catalog then swaps in.
func Example() {
	schema := table.Schema{Fields: []table.Field{
		{ID: 1, Name: "id", Required: true, Type: table.Primitive(table.TypeLong)},
		{ID: 2, Name: "ts", Required: true, Type: table.Primitive(table.TypeTimestampTZ)},
	}}
	spec := table.Spec{Fields: []table.PartitionField{{SourceID: 2, Transform: "day"}}}
	m, err := table.New("s3://bucket/warehouse/db/events", schema, spec, nil)
	if err != nil {
		panic(err)
	}
	day, _ := table.ParseTransform("day")
	ts := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	p, _ := day.Apply(ts)
	file := table.DataFile{
		Path:        m.Location + "/data/ts_day=" + day.PathValue(ts) + "/00000.parquet",
		RecordCount: 2, FileSizeBytes: 1024, Partition: []any{p},
	}

	var manifest, list bytes.Buffer
	mf, err := table.WriteManifest(&manifest, m.CurrentSchema(), m.DefaultSpec(), []table.DataFile{file})
	if err != nil {
		panic(err)
	}
	mf.Path = m.Location + "/metadata/manifest-1.avro" // where the caller stores it
	id := table.NewSnapshotID()
	if err := table.WriteManifestList(&list, id, nil, m.NextSequenceNumber(), []table.ManifestFile{mf}); err != nil {
		panic(err)
	}
	next, err := m.Append(table.Append{SnapshotID: id, ManifestList: m.Location + "/metadata/snap-1.avro",
		Properties: map[string]string{"kinesis-ingest.seq.app.src.shard-0": "495/0"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(file.Path)
	fmt.Println(next.CurrentSnapshot().SequenceNumber, next.CurrentSnapshot().Summary["operation"])
	// Output:
	// s3://bucket/warehouse/db/events/data/ts_day=2026-12-07/00000.parquet
	// 1 append
}
