package iceberg

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/schema"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/iceberg/table"
)

// partField is one field of the table's partition spec as the sink computes
// it: a transform of one of the dataset's fields.
type partField struct {
	source    string
	col       int // the source's index in Config.Columns
	transform table.Transform
}

// parsePartitions reads partition_by: "day(f)", "hour(f)", "month(f)",
// "year(f)", "bucket(N, f)", "identity(f)" or a bare field name.
func parsePartitions(specs []string, cols []schema.Column) ([]partField, error) {
	var out []partField
	for _, spec := range specs {
		name, arg, ok := strings.Cut(strings.TrimSuffix(strings.TrimSpace(spec), ")"), "(")
		transform, source := "identity", strings.TrimSpace(spec)
		if ok {
			transform, source = strings.TrimSpace(name), strings.TrimSpace(arg)
			if transform == "bucket" {
				n, f, ok := strings.Cut(source, ",")
				if !ok {
					return nil, fmt.Errorf("partition_by %q: bucket takes a count and a field, as bucket(16, user_id)", spec)
				}
				if _, err := strconv.Atoi(strings.TrimSpace(n)); err != nil {
					return nil, fmt.Errorf("partition_by %q: bucket's count %q is not a number", spec, strings.TrimSpace(n))
				}
				transform, source = "bucket["+strings.TrimSpace(n)+"]", strings.TrimSpace(f)
			}
		}
		t, err := table.ParseTransform(transform)
		if err != nil {
			return nil, fmt.Errorf("partition_by %q: %w (use day, hour, month, year, bucket(N, field) or identity)", spec, err)
		}
		p, err := partOf(source, t, cols)
		if err != nil {
			return nil, fmt.Errorf("partition_by %q: %w", spec, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func partOf(source string, t table.Transform, cols []schema.Column) (partField, error) {
	for i, c := range cols {
		if c.Name != source {
			continue
		}
		ty := c.Type
		if ty.Kind == schema.KindOptional {
			ty = *ty.Elem
		}
		it, err := icebergType(ty)
		if err != nil || it.Primitive == "" || ty.Kind == schema.KindList || ty.Kind == schema.KindMap || ty.Kind == schema.KindStruct {
			return partField{}, fmt.Errorf("field %q is a %s, which cannot partition a table", source, ty)
		}
		if _, err := t.ResultType(it); err != nil {
			return partField{}, fmt.Errorf("field %q (%s): %w", source, ty, err)
		}
		return partField{source: source, col: i, transform: t}, nil
	}
	return partField{}, fmt.Errorf("the dataset has no field %q", source)
}

// spec is the partition spec of parts over the schema ts: field ids from
// 1000, names as Iceberg's engines name them (ts_day, id_bucket, country).
func spec(parts []partField, ts table.Schema) (table.Spec, error) {
	sp := table.Spec{ID: 0}
	for i, p := range parts {
		f, ok := ts.FieldByName(p.source)
		if !ok {
			return table.Spec{}, fmt.Errorf("the table has no column %q to partition by", p.source)
		}
		sp.Fields = append(sp.Fields, table.PartitionField{SourceID: f.ID, FieldID: 1000 + i, Name: partName(p), Transform: p.transform.String()})
	}
	return sp, nil
}

func partName(p partField) string {
	t := p.transform.String()
	switch {
	case t == "identity":
		return p.source
	case strings.HasPrefix(t, "bucket"):
		return p.source + "_bucket"
	case strings.HasPrefix(t, "truncate"):
		return p.source + "_trunc"
	}
	return p.source + "_" + t
}

// partsOfSpec are the sink's parts for the table's own spec (partition_by
// left empty: the table decides).
func partsOfSpec(sp table.Spec, ts table.Schema, cols []schema.Column) ([]partField, error) {
	var out []partField
	for _, pf := range sp.Fields {
		var src string
		for _, f := range ts.Fields {
			if f.ID == pf.SourceID {
				src = f.Name
			}
		}
		if src == "" {
			return nil, fmt.Errorf("partition field %q's source column %d is not a top-level column", pf.Name, pf.SourceID)
		}
		t, err := table.ParseTransform(pf.Transform)
		if err != nil {
			return nil, fmt.Errorf("partition field %q: %w", pf.Name, err)
		}
		p, err := partOf(src, t, cols)
		if err != nil {
			return nil, fmt.Errorf("partition field %q: %w", pf.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// sameSpec reports whether the table's spec is the one parts make.
func sameSpec(sp table.Spec, want table.Spec) bool {
	if len(sp.Fields) != len(want.Fields) {
		return false
	}
	for i, f := range sp.Fields {
		w := want.Fields[i]
		if f.SourceID != w.SourceID || f.Transform != w.Transform {
			return false
		}
	}
	return true
}

// partitionValues computes r's partition values (as the manifest holds
// them) and the source values they came from (as the path shows them).
func partitionValues(parts []partField, r *record.Row) (vals, srcs []any, err error) {
	if len(parts) == 0 {
		return nil, nil, nil
	}
	vals, srcs = make([]any, len(parts)), make([]any, len(parts))
	for i, p := range parts {
		v := r.FieldValue(p.col, p.source)
		if record.IsNull(v) {
			continue
		}
		pv, err := p.transform.Apply(v)
		if err != nil {
			return nil, nil, fmt.Errorf("partition %s of field %q: %w", p.transform, p.source, err)
		}
		vals[i], srcs[i] = pv, v
	}
	return vals, srcs, nil
}

// partitionPath is the Hive-style path of a partition under data/, as
// Iceberg's engines write it (ts_day=2026-12-07/country=DE).
func partitionPath(parts []partField, sp table.Spec, srcs []any) string {
	var path strings.Builder
	for i, p := range parts {
		seg := "null"
		if srcs[i] != nil {
			seg = url.PathEscape(p.transform.PathValue(srcs[i]))
		}
		if i > 0 {
			path.WriteByte('/')
		}
		path.WriteString(sp.Fields[i].Name)
		path.WriteByte('=')
		path.WriteString(seg)
	}
	return path.String()
}
