package iceberg

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// PropertyPrefix starts the table property of each (application, source,
// shard): <prefix><application>.<source>.<shard> = <sequence number>/<subsequence>
// of the highest row of that shard the table holds. Table properties are
// in every metadata file, survive snapshot expiry and are set in the same
// commit as the data files they describe.
const PropertyPrefix = "kinesis-ingest.seq."

// pos is a row's place in its shard: its record's sequence number (a
// decimal of up to 128 digits, leading zeros trimmed) and its place among a
// KPL aggregate's sub-records.
type pos struct {
	seq string
	sub int
}

func posOf(o *record.Origin) pos {
	s := strings.TrimLeft(o.SequenceNumber, "0")
	if s == "" {
		s = "0"
	}
	return pos{seq: s, sub: o.SubSequence}
}

// after reports whether p comes after q in the shard.
func (p pos) after(q pos) bool {
	if len(p.seq) != len(q.seq) {
		return len(p.seq) > len(q.seq)
	}
	if p.seq != q.seq {
		return p.seq > q.seq
	}
	return p.sub > q.sub
}

func (p pos) String() string { return p.seq + "/" + strconv.Itoa(p.sub) }

func parsePos(s string) (pos, error) {
	seq, sub, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(sub)
	if !ok || err != nil || seq == "" || strings.TrimLeft(seq, "0123456789") != "" {
		return pos{}, fmt.Errorf("position %q is not <sequence number>/<subsequence>", s)
	}
	p := pos{seq: strings.TrimLeft(seq, "0"), sub: n}
	if p.seq == "" {
		p.seq = "0"
	}
	return p, nil
}

// propertyKey names the position property of a shard.
func propertyKey(app, source, shard string) string {
	return PropertyPrefix + app + "." + source + "." + shard
}

// Committed is the position the table's properties record for a shard, and
// whether they record one.
func committed(props map[string]string, key string) (pos, bool, error) {
	v, ok := props[key]
	if !ok {
		return pos{}, false, nil
	}
	p, err := parsePos(v)
	if err != nil {
		return pos{}, false, fmt.Errorf("table property %s: %w (remove the property to read the shard again from its checkpoint)", key, err)
	}
	return p, true, nil
}
