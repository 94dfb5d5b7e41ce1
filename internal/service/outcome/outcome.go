// Package outcome counts what records became when they were run through a
// config outside the worker: a dry run on a sample of the streams
// (kinesis-ingest validate --sample) and a redrive of dead letters. Per
// dataset: rows, dead letters by reason and field with one example of each
// kind, rows the sink already held, and records the dataset did not take;
// and it prints them for a person.
package outcome

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Dataset is what records became in one dataset of a source, or, with
// Dataset "", in none of them: the decode errors and unrouted records of
// the source.
type Dataset struct {
	Source  string `json:"source"`
	Dataset string `json:"dataset,omitempty"`
	// Records are the records given to the dataset (a redrive, which
	// delivers to one dataset at a time).
	Records int `json:"records,omitempty"`
	// Rows are the rows made (a redrive: stored, or held already).
	Rows int `json:"rows"`
	// Duplicates are the rows the sink already held (a redrive into a sink
	// that de-duplicates), among Rows.
	Duplicates int `json:"duplicates,omitempty"`
	// Letters are the dead letters made, by kind in Kinds.
	Letters int     `json:"dead_letters"`
	Kinds   []*Kind `json:"kinds,omitempty"`
	// Filtered are the rows the dataset's since, until or sample dropped.
	Filtered int `json:"filtered,omitempty"`
	// CDCSkipped are the change events that change no row (a cdc:
	// debezium dataset), printed when there are some.
	CDCSkipped int `json:"cdc_skipped,omitempty"`
	// Skipped are the records that carry no data by design (CloudWatch
	// Logs control messages; Dataset ""), printed when there are some.
	Skipped int `json:"skipped,omitempty"`
	// Unrouted are the records no dataset took (Dataset ""), or, in a
	// redrive into one dataset, that its where no longer takes.
	Unrouted int `json:"unrouted,omitempty"`
}

// Kind is the dead letters of one reason and, for a schema_error, one
// field, with the first of them as an example.
type Kind struct {
	Reason  string        `json:"reason"`
	Field   string        `json:"field,omitempty"`
	Count   int           `json:"count"`
	Example errview.Entry `json:"example"`
}

// Report collects Datasets. It is not safe for concurrent use.
type Report struct {
	m map[[2]string]*Dataset
}

// Of returns the counts of dataset of source ("" for none), made on first
// use.
func (r *Report) Of(source, dataset string) *Dataset {
	if r.m == nil {
		r.m = map[[2]string]*Dataset{}
	}
	k := [2]string{source, dataset}
	d := r.m[k]
	if d == nil {
		d = &Dataset{Source: source, Dataset: dataset}
		r.m[k] = d
	}
	return d
}

// Datasets returns the counts by source, then dataset, each source's
// records of no dataset last.
func (r *Report) Datasets() []*Dataset {
	out := make([]*Dataset, 0, len(r.m))
	for _, d := range r.m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Dataset) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		if (a.Dataset == "") != (b.Dataset == "") {
			if a.Dataset == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Dataset, b.Dataset)
	})
	return out
}

// Totals sums the datasets' counts.
func (r *Report) Totals() Dataset {
	var t Dataset
	for _, d := range r.m {
		t.Records += d.Records
		t.Rows += d.Rows
		t.Duplicates += d.Duplicates
		t.Letters += d.Letters
		t.Filtered += d.Filtered
		t.Unrouted += d.Unrouted
		t.CDCSkipped += d.CDCSkipped
		t.Skipped += d.Skipped
	}
	return t
}

// AddLetters counts letters as d's, whatever dataset each names (a
// decode_error names none): the caller knows where they were made.
func (d *Dataset) AddLetters(letters []record.DeadLetter) {
	for i := range letters {
		l := &letters[i]
		d.Letters++
		field := ""
		if l.Reason == record.ReasonSchema {
			field = errview.FieldPath(l.Error)
		}
		j := slices.IndexFunc(d.Kinds, func(k *Kind) bool { return k.Reason == string(l.Reason) && k.Field == field })
		if j < 0 {
			d.Kinds = append(d.Kinds, &Kind{Reason: string(l.Reason), Field: field, Example: errview.EntryOf(l)})
			j = len(d.Kinds) - 1
		}
		d.Kinds[j].Count++
	}
	slices.SortStableFunc(d.Kinds, func(a, b *Kind) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if c := strings.Compare(a.Reason, b.Reason); c != 0 {
			return c
		}
		return strings.Compare(a.Field, b.Field)
	})
}

// WriteText writes the datasets for a terminal, one block each:
//
//	dataset orders (source orders): rows 120, dead letters 27, duplicates 0, filtered 3, unrouted 0
//	  schema_error amount: 20
//	    e.g. shardId-000000000001 4959…/0: amount: want float, got string "12.50"
//	    data (64 bytes, text): {"id":29,"amount":"12.50",…}
//
// (source orders, no dataset: … for the records of none). Duplicates,
// filtered and unrouted are printed when wanted says so, even when 0, so
// that a script finds every count. What came from a record is stripped of
// control characters.
func WriteText(w io.Writer, datasets []*Dataset, wanted Columns) error {
	ew := &errWriter{w: w}
	for _, d := range datasets {
		if d.Dataset == "" {
			ew.printf("source %s, no dataset: ", d.Source)
		} else {
			ew.printf("dataset %s (source %s): ", d.Dataset, d.Source)
		}
		if wanted.Records {
			ew.printf("records %d, ", d.Records)
		}
		if d.Dataset == "" {
			ew.printf("dead letters %d", d.Letters)
		} else {
			ew.printf("rows %d, dead letters %d", d.Rows, d.Letters)
		}
		if wanted.Duplicates && d.Dataset != "" {
			ew.printf(", duplicates %d", d.Duplicates)
		}
		if wanted.Filtered && d.Dataset != "" {
			ew.printf(", filtered %d", d.Filtered)
		}
		if wanted.Unrouted {
			ew.printf(", unrouted %d", d.Unrouted)
		}
		if d.CDCSkipped > 0 {
			ew.printf(", cdc events changing no row %d", d.CDCSkipped)
		}
		if d.Skipped > 0 {
			ew.printf(", skipped (control messages) %d", d.Skipped)
		}
		ew.printf("\n")
		for _, k := range d.Kinds {
			kind := k.Reason
			if k.Field != "" {
				kind += " " + errview.Safe(k.Field)
			}
			e := k.Example
			ew.printf("  %s: %d\n", kind, k.Count)
			ew.printf("    e.g. %s %s/%d: %s\n", errview.Safe(e.ShardID), errview.Safe(e.SequenceNumber), e.SubSequence, errview.Safe(e.Error))
			more := ""
			if e.Preview.Truncated {
				more = " …"
			}
			ew.printf("    data (%d bytes, %s): %s%s\n", e.Size, e.Preview.Encoding, errview.Safe(e.Preview.Text), more)
		}
	}
	return ew.err
}

// Columns says which of the optional counts WriteText prints.
type Columns struct {
	Records, Duplicates, Filtered, Unrouted bool
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
