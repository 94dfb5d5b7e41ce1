package s3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kinesis-ingest/kinesis-ingest/record"
)

// Widths of the zero-padded numbers in an object's key, so that the keys of
// one chain sort (as S3 lists them, by UTF-8 bytes) in stream order. Kinesis
// sequence numbers are decimal strings of up to 128 digits by the API's
// pattern; real ones have 56.
const (
	seqWidth = 128
	subWidth = 10
)

// Object metadata (x-amz-meta-*) every object of the sink carries: the
// position of its last row, which the next object of its chain starts after,
// and its row count.
const (
	metaLastSeq = "kinesis-last-sequence"
	metaLastSub = "kinesis-last-subsequence"
	metaRows    = "kinesis-rows"
)

// pos is a row's position in its shard: (sequence number, sub-sequence).
type pos struct {
	seq string // decimal, no leading zeros ("0" for zero)
	sub int
}

func posOf(o *record.Origin) (pos, error) {
	s := strings.TrimLeft(o.SequenceNumber, "0")
	if s == "" {
		s = "0"
	}
	if len(s) > seqWidth || strings.Trim(s, "0123456789") != "" {
		return pos{}, fmt.Errorf("sequence number %q of shard %s is not a decimal number of at most %d digits", o.SequenceNumber, o.ShardID, seqWidth)
	}
	if o.SubSequence < 0 {
		return pos{}, fmt.Errorf("sub-sequence %d of record %s in shard %s is negative", o.SubSequence, o.SequenceNumber, o.ShardID)
	}
	return pos{seq: s, sub: o.SubSequence}, nil
}

// cmp orders positions in the shard: by sequence number as a number, then
// sub-sequence.
func (p pos) cmp(q pos) int {
	if len(p.seq) != len(q.seq) {
		if len(p.seq) < len(q.seq) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(p.seq, q.seq); c != 0 {
		return c
	}
	switch {
	case p.sub < q.sub:
		return -1
	case p.sub > q.sub:
		return 1
	}
	return 0
}

func (p pos) String() string { return p.seq + "/" + strconv.Itoa(p.sub) }

// name is the key's last part for an object whose first row is at p:
// <shard>-<sequence number, 128 digits>-<sub-sequence, 10 digits>.
func (p pos) name(shard string) string {
	var b strings.Builder
	b.Grow(len(shard) + seqWidth + subWidth + 2)
	b.WriteString(shard)
	b.WriteByte('-')
	for range seqWidth - len(p.seq) {
		b.WriteByte('0')
	}
	b.WriteString(p.seq)
	b.WriteByte('-')
	sub := strconv.Itoa(p.sub)
	for range subWidth - len(sub) {
		b.WriteByte('0')
	}
	b.WriteString(sub)
	return b.String()
}

// lastOf reads the position of an object's last row from its metadata.
func lastOf(meta map[string]string) (pos, bool) {
	seq, sub := lookup(meta, metaLastSeq), lookup(meta, metaLastSub)
	n, err := strconv.Atoi(sub)
	if seq == "" || err != nil {
		return pos{}, false
	}
	p, err := posOf(&record.Origin{SequenceNumber: seq, SubSequence: n})
	return p, err == nil
}

// lookup finds a metadata key whatever its case: S3 lower-cases them, other
// servers may not.
func lookup(meta map[string]string, key string) string {
	if v, ok := meta[key]; ok {
		return v
	}
	for k, v := range meta {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}
