package pipeline

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// watermarks are a shard's state for late rows: per dataset with a
// disorder, the newest timestamp seen so far in the shard, in Unix
// microseconds (the precision of a datetime).
type watermarks map[string]int64

// stateVersion tags the encoding, so that a later one can read this one.
const stateVersion = 1

type stateJSON struct {
	V      int              `json:"v"`
	Newest map[string]int64 `json:"newest"`
}

func decodeWatermarks(b []byte) (watermarks, error) {
	if len(b) == 0 {
		return watermarks{}, nil
	}
	var s stateJSON
	if err := json.Unmarshal(b, &s); err != nil || s.V != stateVersion {
		return nil, fmt.Errorf("the state stored with the shard's checkpoint is not a version %d watermark state (%q): delete the lease table's State attribute of the shard to start its watermarks afresh", stateVersion, clipState(b))
	}
	if s.Newest == nil {
		s.Newest = map[string]int64{}
	}
	return s.Newest, nil
}

func clipState(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// encode returns the state to store with the checkpoint; nil when no dataset
// has a watermark (so that the lease table stays as it was).
func (w watermarks) encode() []byte {
	if len(w) == 0 {
		return nil
	}
	b, _ := json.Marshal(stateJSON{V: stateVersion, Newest: w}) // a map of int64s always encodes
	return b
}

func (w watermarks) clone() watermarks {
	if w == nil {
		return watermarks{}
	}
	return maps.Clone(w)
}

// lateRule is what a dataset with a disorder needs to judge its rows.
type lateRule struct {
	disorder time.Duration
	tsIndex  int
}

func lateRules(src *Source) map[string]lateRule {
	var out map[string]lateRule
	for _, r := range src.Routes {
		if r.Disorder > 0 {
			if out == nil {
				out = map[string]lateRule{}
			}
			out[r.Dataset] = lateRule{disorder: r.Disorder, tsIndex: r.TimestampIndex}
		}
	}
	return out
}

// dropLate moves the rows of sb that are late, in record order, to dead
// letters (reason late), advancing wm with every row that is not. A replay
// from a checkpoint starts from the watermarks stored with it and meets the
// same records in the same order, so it judges them the same.
func (p *Pipeline) dropLate(c *classified, sb *sinkBatch) {
	rules, wm := p.late[c.src], &c.out
	if len(rules) == 0 {
		return
	}
	rows, idx := sb.rows[:0], sb.recIdx[:0]
	for i := range sb.rows {
		r := &sb.rows[i]
		rule, ok := rules[r.Dataset]
		var ts time.Time
		if ok && rule.tsIndex >= 0 && rule.tsIndex < len(r.Fields) {
			ts, ok = r.Fields[rule.tsIndex].Value.(time.Time)
		} else {
			ok = false
		}
		if ok {
			us := ts.UnixMicro()
			newest, seen := (*wm)[r.Dataset]
			if seen && us < newest-rule.disorder.Microseconds() {
				p.deadLetter(c, &c.records[sb.recIdx[i]], r.Dataset, record.ReasonLate, fmt.Errorf(
					"%s: %s is older than the shard's watermark %s (the newest %s seen in shard %s, %s, minus disorder %s)",
					r.Fields[rule.tsIndex].Name, fmtMicros(us), fmtMicros(newest-rule.disorder.Microseconds()),
					r.Fields[rule.tsIndex].Name, r.Origin.ShardID, fmtMicros(newest), rule.disorder))
				continue
			}
			if !seen || us > newest {
				(*wm)[r.Dataset] = us
			}
		}
		rows, idx = append(rows, *r), append(idx, sb.recIdx[i])
	}
	sb.rows, sb.recIdx = rows, idx
}

func fmtMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000Z")
}
