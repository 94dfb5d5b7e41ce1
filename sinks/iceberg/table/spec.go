package table

import (
	"encoding/json"
	"errors"
	"fmt"
)

// PartitionField is one field of a partition spec: Transform applied to the
// column SourceID gives the value of partition field FieldID, called Name.
type PartitionField struct {
	SourceID  int    `json:"source-id"`
	FieldID   int    `json:"field-id"`
	Name      string `json:"name"`
	Transform string `json:"transform"`
}

// Spec is a partition spec; no fields means unpartitioned.
type Spec struct {
	ID     int              `json:"spec-id"`
	Fields []PartitionField `json:"fields"`
}

// firstPartitionFieldID is where partition field ids start: Java's
// reference implementation begins at 1000, and an unpartitioned table's
// last-partition-id is 999.
const firstPartitionFieldID = 1000

// Transforms parses the transform of every field, in order.
func (s Spec) Transforms() ([]Transform, error) {
	out := make([]Transform, len(s.Fields))
	for i, f := range s.Fields {
		t, err := ParseTransform(f.Transform)
		if err != nil {
			return nil, fmt.Errorf("partition field %q: %w", f.Name, err)
		}
		out[i] = t
	}
	return out, nil
}

// PartitionType is the struct of partition values the spec gives for
// schema: one optional field per partition field, with the partition field's
// id and name and the transform's result type. It is the type of a
// manifest's data_file.partition.
func (s Spec) PartitionType(schema Schema) ([]Field, error) {
	out := make([]Field, len(s.Fields))
	var errs []error
	for i, pf := range s.Fields {
		src, ok := schema.FieldByID(pf.SourceID)
		if !ok {
			errs = append(errs, fmt.Errorf("partition field %q: source column id %d is not in schema %d", pf.Name, pf.SourceID, schema.ID))
			continue
		}
		t, err := ParseTransform(pf.Transform)
		if err != nil {
			errs = append(errs, fmt.Errorf("partition field %q: %w", pf.Name, err))
			continue
		}
		rt, err := t.ResultType(src.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("partition field %q on column %q: %w", pf.Name, src.Name, err))
			continue
		}
		out[i] = Field{ID: pf.FieldID, Name: pf.Name, Type: rt}
	}
	return out, errors.Join(errs...)
}

// validate checks a spec against its schema: sources exist and are
// primitive, transforms apply, field ids and names unique, and a partition
// name does not shadow a column unless it is that column's identity.
func (s Spec) validate(schema Schema) error {
	_, err := s.PartitionType(schema)
	errs := []error{err}
	ids := map[int]bool{}
	names := map[string]bool{}
	for _, pf := range s.Fields {
		if pf.FieldID < firstPartitionFieldID {
			errs = append(errs, fmt.Errorf("partition field %q: id %d, want %d or more", pf.Name, pf.FieldID, firstPartitionFieldID))
		}
		if ids[pf.FieldID] {
			errs = append(errs, fmt.Errorf("partition field %q: id %d used twice", pf.Name, pf.FieldID))
		}
		ids[pf.FieldID] = true
		if pf.Name == "" || names[pf.Name] {
			errs = append(errs, fmt.Errorf("partition field %q: name empty or used twice", pf.Name))
		}
		names[pf.Name] = true
		if col, ok := schema.FieldByName(pf.Name); ok && !(pf.Transform == "identity" && col.ID == pf.SourceID) {
			errs = append(errs, fmt.Errorf("partition field %q: the name is a column's; only that column's identity may use it", pf.Name))
		}
	}
	return errors.Join(errs...)
}

// MarshalJSON writes "fields" as [] for an unpartitioned spec: readers
// require the key.
func (s Spec) MarshalJSON() ([]byte, error) {
	type plain Spec
	if s.Fields == nil {
		s.Fields = []PartitionField{}
	}
	return json.Marshal(plain(s))
}
