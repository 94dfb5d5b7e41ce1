package sinktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

func compareOrigin(want, got record.Origin, all bool) error {
	switch {
	case got.Source != want.Source:
		return fmt.Errorf("Source: got %q, want %q", got.Source, want.Source)
	case got.ShardID != want.ShardID:
		return fmt.Errorf("ShardID: got %q, want %q", got.ShardID, want.ShardID)
	case got.SequenceNumber != want.SequenceNumber:
		return fmt.Errorf("SequenceNumber: got %q, want %q", got.SequenceNumber, want.SequenceNumber)
	case got.SubSequence != want.SubSequence:
		return fmt.Errorf("SubSequence: got %d, want %d", got.SubSequence, want.SubSequence)
	case !got.ArrivalTime.Equal(want.ArrivalTime.Truncate(time.Microsecond)):
		return fmt.Errorf("ArrivalTime: got %v, want %v", got.ArrivalTime, want.ArrivalTime)
	case all && got.StreamARN != want.StreamARN:
		return fmt.Errorf("StreamARN: got %q, want %q", got.StreamARN, want.StreamARN)
	case all && got.PartitionKey != want.PartitionKey:
		return fmt.Errorf("PartitionKey: got %q, want %q", got.PartitionKey, want.PartitionKey)
	}
	return nil
}

func compareRow(want, got record.Row) error {
	if err := compareOrigin(want.Origin, got.Origin, false); err != nil {
		return err
	}
	return compareFields(want.Fields, got.Fields)
}

// compareTypedRow is compareRow for a store with a column per field
// (RowHarness.Typed): a null column the row never had is not an extra field.
func compareTypedRow(want, got record.Row) error {
	has := make(map[string]bool, len(want.Fields))
	for _, f := range want.Fields {
		has[f.Name] = true
	}
	var kept []record.Field
	for _, f := range got.Fields {
		if has[f.Name] || !record.IsNull(f.Value) {
			kept = append(kept, f)
		}
	}
	got.Fields = kept
	return compareRow(want, got)
}

func compareDeadLetter(want, got record.DeadLetter) error {
	if err := compareOrigin(want.Origin, got.Origin, true); err != nil {
		return err
	}
	switch {
	case got.Dataset != want.Dataset:
		return fmt.Errorf("Dataset: got %q, want %q", got.Dataset, want.Dataset)
	case got.Reason != want.Reason:
		return fmt.Errorf("Reason: got %q, want %q", got.Reason, want.Reason)
	case got.Error != want.Error:
		return fmt.Errorf("Error: got %q, want %q", got.Error, want.Error)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Errorf("Data: got %q, want %q", got.Data, want.Data)
	}
	return nil
}

// compareFields wants the same names in the same order with matching values.
func compareFields(want, got []record.Field) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d fields %v, want %d %v", len(got), names(got), len(want), names(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name {
			return fmt.Errorf("field %d: got name %q, want %q (declaration order)", i, got[i].Name, want[i].Name)
		}
		if err := matchValue(want[i].Value, got[i].Value); err != nil {
			return fmt.Errorf("field %q: %w", want[i].Name, err)
		}
	}
	return nil
}

func names(fs []record.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// matchValue compares a value read back with the value written. got may be
// of the written Go type or of the form a store keeps it in (see RowHarness):
// the written type decides how got is interpreted.
func matchValue(want, got any) error {
	mismatch := func() error { return fmt.Errorf("got %#v (%T), want %#v (%T)", got, got, want, want) }
	if want != nil && record.IsNull(want) {
		// A nil slice or map is written as null (a plain nil must read back
		// as a plain nil: see case nil).
		if got != nil && !record.IsNull(got) {
			return mismatch()
		}
		return nil
	}
	switch w := want.(type) {
	case nil:
		if got != nil {
			return mismatch()
		}
	case bool:
		if g, ok := got.(bool); !ok || g != w {
			return mismatch()
		}
	case int64:
		g, ok := asInt(got)
		if !ok || g != w {
			return mismatch()
		}
	case float64:
		g, ok := asFloat(got)
		if !ok || g != w {
			return mismatch()
		}
	case string:
		if g, ok := got.(string); !ok || g != w {
			return mismatch()
		}
	case []byte:
		var g []byte
		switch v := got.(type) {
		case []byte:
			g = v
		case string:
			var err error
			if g, err = base64.StdEncoding.DecodeString(v); err != nil {
				return fmt.Errorf("%w: not base64: %v", mismatch(), err)
			}
		default:
			return mismatch()
		}
		if !bytes.Equal(g, w) {
			return mismatch()
		}
	case time.Time:
		var g time.Time
		switch v := got.(type) {
		case time.Time:
			g = v
		case string:
			var err error
			if g, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%w: %v", mismatch(), err)
			}
		default:
			return mismatch()
		}
		if !g.Equal(w.Truncate(time.Microsecond)) {
			return mismatch()
		}
	case record.Date:
		switch v := got.(type) {
		case record.Date:
			if v != w {
				return mismatch()
			}
		case string:
			if v != w.String() {
				return mismatch()
			}
		case time.Time:
			if y, m, d := v.Date(); y != w.Year || m != w.Month || d != w.Day {
				return mismatch()
			}
		default:
			return mismatch()
		}
	case record.Decimal:
		var g string
		switch v := got.(type) {
		case record.Decimal:
			g = string(v)
		case string:
			g = v
		case json.Number:
			g = string(v)
		default:
			return mismatch()
		}
		if g != string(w) {
			return mismatch()
		}
	case []float64:
		gs, ok := asList(got)
		if !ok || len(gs) != len(w) {
			return mismatch()
		}
		for i := range w {
			if err := matchValue(w[i], gs[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case []any:
		gs, ok := asList(got)
		if !ok || len(gs) != len(w) {
			return mismatch()
		}
		for i := range w {
			if err := matchValue(w[i], gs[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case map[string]any:
		g, ok := asMap(got)
		if !ok || len(g) != len(w) {
			return mismatch()
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("key %q missing: %w", k, mismatch())
			}
			if err := matchValue(wv, gv); err != nil {
				return fmt.Errorf("[%q]: %w", k, err)
			}
		}
	case []record.Field:
		switch v := got.(type) {
		case []record.Field:
			// Stored in order: compare in order.
			if err := compareFields(w, v); err != nil {
				return err
			}
		case map[string]any:
			// A store that keeps objects unordered (jsonb).
			if len(v) != len(w) {
				return mismatch()
			}
			for _, f := range w {
				gv, ok := v[f.Name]
				if !ok {
					return fmt.Errorf("field %q missing: %w", f.Name, mismatch())
				}
				if err := matchValue(f.Value, gv); err != nil {
					return fmt.Errorf(".%s: %w", f.Name, err)
				}
			}
		default:
			return mismatch()
		}
	default:
		return fmt.Errorf("sinktest: written value of unexpected type %T", want)
	}
	return nil
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case json.Number:
		i, err := strconv.ParseInt(string(v), 10, 64)
		return i, err == nil
	case float64:
		if v != math.Trunc(v) || v < -(1<<63) || v >= 1<<63 {
			return 0, false
		}
		return int64(v), float64(int64(v)) == v
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil
	}
	return 0, false
}

func asList(v any) ([]any, bool) {
	switch v := v.(type) {
	case []any:
		return v, true
	case []float64:
		out := make([]any, len(v))
		for i, f := range v {
			out[i] = f
		}
		return out, true
	}
	return nil, false
}

func asMap(v any) (map[string]any, bool) {
	switch v := v.(type) {
	case map[string]any:
		return v, true
	case []record.Field:
		m := make(map[string]any, len(v))
		for _, f := range v {
			if _, dup := m[f.Name]; dup {
				return nil, false
			}
			m[f.Name] = f.Value
		}
		return m, true
	}
	return nil, false
}
