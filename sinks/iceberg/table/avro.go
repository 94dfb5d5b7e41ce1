package table

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// The Avro schemas of manifests and manifest lists, format version 2, as
// the spec's "Manifests" and "Manifest Lists" sections define them: every
// field carries its Iceberg "field-id", maps of int keys are arrays of
// key/value records with logicalType "map" (Appendix A), optional fields
// are unions with null defaulting to null. Record names follow Java's
// (r<field id>, k<key id>_v<value id>) so the files look like Java's.

type avroField struct {
	Name    string `json:"name"`
	Type    any    `json:"type"`
	FieldID int    `json:"field-id"`
	Doc     string `json:"doc,omitempty"`
	// iceberg-field-name keeps a name Avro cannot spell (Java's convention).
	IcebergName string `json:"iceberg-field-name,omitempty"`
	nullable    bool
}

// MarshalJSON writes "default": null for optional fields, which omitempty
// cannot express.
func (f avroField) MarshalJSON() ([]byte, error) {
	type plain avroField
	b, err := json.Marshal(plain(f))
	if err != nil || !f.nullable {
		return b, err
	}
	return append(b[:len(b)-1], []byte(`,"default":null}`)...), nil
}

func required(id int, name string, typ any) avroField {
	return avroField{Name: name, Type: typ, FieldID: id}
}

func optional(id int, name string, typ any) avroField {
	return avroField{Name: name, Type: []any{"null", typ}, FieldID: id, nullable: true}
}

func avroRecord(name string, fields ...avroField) map[string]any {
	return map[string]any{"type": "record", "name": name, "fields": fields}
}

func avroIntMap(keyID, valueID int, value string) map[string]any {
	return map[string]any{
		"type": "array", "logicalType": "map",
		"items": avroRecord(fmt.Sprintf("k%d_v%d", keyID, valueID),
			required(keyID, "key", "int"), required(valueID, "value", value)),
	}
}

func avroList(elementID int, item string) map[string]any {
	return map[string]any{"type": "array", "items": item, "element-id": elementID}
}

// manifestEntrySchema is the v2 manifest_entry schema for a partition type.
func manifestEntrySchema(partition []Field) (string, error) {
	pfields := make([]avroField, len(partition))
	for i, f := range partition {
		typ, _, err := avroPrimitive(f.Type, f.ID)
		if err != nil {
			return "", fmt.Errorf("partition field %q: %w", f.Name, err)
		}
		name, orig := avroName(f.Name)
		pfields[i] = optional(f.ID, name, typ)
		pfields[i].IcebergName = orig
	}
	dataFile := avroRecord("r2",
		required(134, "content", "int"),
		required(100, "file_path", "string"),
		required(101, "file_format", "string"),
		required(102, "partition", avroRecord("r102", pfields...)),
		required(103, "record_count", "long"),
		required(104, "file_size_in_bytes", "long"),
		optional(108, "column_sizes", avroIntMap(117, 118, "long")),
		optional(109, "value_counts", avroIntMap(119, 120, "long")),
		optional(110, "null_value_counts", avroIntMap(121, 122, "long")),
		optional(137, "nan_value_counts", avroIntMap(138, 139, "long")),
		optional(125, "lower_bounds", avroIntMap(126, 127, "bytes")),
		optional(128, "upper_bounds", avroIntMap(129, 130, "bytes")),
		optional(131, "key_metadata", "bytes"),
		optional(132, "split_offsets", avroList(133, "long")),
		optional(135, "equality_ids", avroList(136, "int")),
		optional(140, "sort_order_id", "int"),
	)
	entry := avroRecord("manifest_entry",
		required(0, "status", "int"),
		optional(1, "snapshot_id", "long"),
		optional(3, "sequence_number", "long"),
		optional(4, "file_sequence_number", "long"),
		required(2, "data_file", dataFile),
	)
	b, err := json.Marshal(entry)
	return string(b), err
}

// manifestFileSchema is the v2 manifest_file schema of a manifest list.
func manifestFileSchema() string {
	summary := avroRecord("r508",
		required(509, "contains_null", "boolean"),
		optional(518, "contains_nan", "boolean"),
		optional(510, "lower_bound", "bytes"),
		optional(511, "upper_bound", "bytes"),
	)
	file := avroRecord("manifest_file",
		required(500, "manifest_path", "string"),
		required(501, "manifest_length", "long"),
		required(502, "partition_spec_id", "int"),
		required(517, "content", "int"),
		required(515, "sequence_number", "long"),
		required(516, "min_sequence_number", "long"),
		required(503, "added_snapshot_id", "long"),
		required(504, "added_files_count", "int"),
		required(505, "existing_files_count", "int"),
		required(506, "deleted_files_count", "int"),
		required(512, "added_rows_count", "long"),
		required(513, "existing_rows_count", "long"),
		required(514, "deleted_rows_count", "long"),
		optional(507, "partitions", map[string]any{"type": "array", "items": summary, "element-id": 508}),
		optional(519, "key_metadata", "bytes"),
	)
	b, _ := json.Marshal(file) // a constant shape: cannot fail
	return string(b)
}

// avroPrimitive is the Avro schema of an Iceberg primitive (Appendix A) and
// the name goavro gives that branch of a union with null. Named types
// (fixed) are named after the field id, so two in one record never clash.
func avroPrimitive(t Type, fieldID int) (schema any, unionName string, err error) {
	switch t.Primitive {
	case TypeBoolean, TypeInt, TypeLong, TypeFloat, TypeDouble, TypeString:
		return t.Primitive, t.Primitive, nil
	case TypeBinary:
		return "bytes", "bytes", nil
	case TypeDate:
		return map[string]any{"type": "int", "logicalType": "date"}, "int.date", nil
	case TypeTime:
		return map[string]any{"type": "long", "logicalType": "time-micros"}, "long.time-micros", nil
	case TypeTimestamp, TypeTimestampTZ:
		return map[string]any{"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": t.Primitive == TypeTimestampTZ},
			"long.timestamp-micros", nil
	case TypeUUID:
		name := "uuid_" + strconv.Itoa(fieldID)
		return map[string]any{"type": "fixed", "name": name, "size": 16, "logicalType": "uuid"}, name, nil
	}
	if p, s, ok := t.DecimalParams(); ok {
		name := "decimal_" + strconv.Itoa(fieldID)
		return map[string]any{"type": "fixed", "name": name, "size": decimalBytes(p),
			"logicalType": "decimal", "precision": p, "scale": s}, name, nil
	}
	if l, ok := t.FixedLength(); ok {
		name := "fixed_" + strconv.Itoa(fieldID)
		return map[string]any{"type": "fixed", "name": name, "size": l}, name, nil
	}
	return nil, "", fmt.Errorf("no Avro form for type %s", t)
}

// decimalBytes is the fewest bytes whose two's complement holds every
// unscaled value of precision p (Appendix A's minBytesRequired).
func decimalBytes(p int) int {
	return int(math.Ceil((float64(p)*math.Log2(10) + 1) / 8))
}

// avroValue converts a partition value to the Go form goavro encodes for
// type t, wrapped for its union with null.
func avroValue(t Type, fieldID int, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	_, union, err := avroPrimitive(t, fieldID)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case record.Date:
		v = int32(daysOf(x))
	case record.Decimal:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			return nil, fmt.Errorf("decimal %q: not a decimal number", string(x))
		}
		v = r
	case time.Time:
		if t.Primitive == TypeDate {
			v = int32(floorDiv(x.Unix(), 86400))
		}
	}
	if _, _, ok := t.DecimalParams(); ok {
		if _, ok := v.(*big.Rat); !ok {
			return nil, fmt.Errorf("want a decimal, got %T", v)
		}
	}
	return map[string]any{union: v}, nil
}

// avroName makes name a valid Avro name as Java does (an invalid character
// becomes _x<hex>, a leading digit gets a _), returning the original too
// when it had to change it.
func avroName(name string) (avro, original string) {
	var b strings.Builder
	changed := false
	for i, r := range name {
		valid := r == '_' || (r < unicode.MaxASCII && (unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))))
		switch {
		case valid:
			b.WriteRune(r)
		case i == 0 && r < unicode.MaxASCII && unicode.IsDigit(r):
			b.WriteString("_" + string(r))
			changed = true
		default:
			fmt.Fprintf(&b, "_x%X", r)
			changed = true
		}
	}
	if !changed {
		return name, ""
	}
	return b.String(), name
}
