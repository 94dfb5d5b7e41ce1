// Package letterjson is the JSON line of a dead letter, as every sink that
// stores dead letters as text writes it (sinks/file, sinks/s3): one object
// with the keys source, stream_arn, shard_id, sequence_number, subsequence,
// partition_key, arrival_time, dataset (left out when empty), reason, error
// and data (the record's bytes, base64), in that order. Append writes one;
// a Decoder reads one back, of its data only the start, so that a scan of
// dead letters of 1 MiB records decodes none of them whole.
package letterjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/kinesis-ingest/kinesis-ingest/record"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/jsonenc"
)

// Append appends d as one line, its newline included.
func Append(b []byte, d *record.DeadLetter) ([]byte, error) {
	b = append(b, `{"source":`...)
	b = jsonenc.AppendString(b, d.Source)
	b = append(b, `,"stream_arn":`...)
	b = jsonenc.AppendString(b, d.StreamARN)
	b = append(b, `,"shard_id":`...)
	b = jsonenc.AppendString(b, d.ShardID)
	b = append(b, `,"sequence_number":`...)
	b = jsonenc.AppendString(b, d.SequenceNumber)
	b = append(b, `,"subsequence":`...)
	b = strconv.AppendInt(b, int64(d.SubSequence), 10)
	b = append(b, `,"partition_key":`...)
	b = jsonenc.AppendString(b, d.PartitionKey)
	b = append(b, `,"arrival_time":`...)
	var err error
	if b, err = jsonenc.AppendTime(b, d.ArrivalTime); err != nil {
		return b, fmt.Errorf("arrival time: %w", err)
	}
	if d.Dataset != "" {
		b = append(b, `,"dataset":`...)
		b = jsonenc.AppendString(b, d.Dataset)
	}
	b = append(b, `,"reason":`...)
	b = jsonenc.AppendString(b, string(d.Reason))
	b = append(b, `,"error":`...)
	b = jsonenc.AppendString(b, d.Error)
	b = append(b, dataKey...)
	b = base64.StdEncoding.AppendEncode(b, d.Data)
	return append(b, '"', '}', '\n'), nil
}

// Letter is a dead letter read back. Its Data may be only the start of the
// record's data (Decoder.Head); Size is the length of all of it.
type Letter struct {
	record.DeadLetter
	Size int
}

// ErrNotALetter is returned by Decode for a JSON object without a reason: a
// line of something else (a row) in the same place.
var ErrNotALetter = errors.New("not a dead letter: no reason")

// Decoder decodes dead-letter lines. It is not safe for concurrent use.
type Decoder struct {
	// Head is how many bytes of each letter's data Decode keeps; a negative
	// Head keeps all of it.
	Head    int
	scratch []byte
}

// Decode decodes line (without its newline) into l. l.Data does not alias
// line.
func (d *Decoder) Decode(line []byte, l *Letter) error {
	ll := lineLetter{Data: dataHead{limit: d.Head}}
	if err := decodeLine(line, &d.scratch, &ll); err != nil {
		return err
	}
	if ll.Reason == "" {
		return ErrNotALetter
	}
	*l = Letter{
		DeadLetter: record.DeadLetter{Origin: ll.Origin, Dataset: ll.Dataset, Reason: ll.Reason, Error: ll.Error, Data: ll.Data.head},
		Size:       ll.Data.size,
	}
	return nil
}

// lineLetter is a dead-letter line as Decode decodes it: the data is not
// decoded whole (dataHead).
type lineLetter struct {
	record.Origin
	Dataset string        `json:"dataset"`
	Reason  record.Reason `json:"reason"`
	Error   string        `json:"error"`
	Data    dataHead      `json:"data"`
}

// dataHead decodes of a base64 JSON string only its first limit bytes (all
// when limit < 0) and its length: a 1 MiB record costs no 1 MiB buffer.
type dataHead struct {
	limit int
	size  int
	head  []byte
}

func (h *dataHead) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		h.size, h.head = 0, nil
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || bytes.IndexByte(b, '\\') >= 0 {
		// Escapes are not base64 as the sinks write it: decode it the slow way.
		var full []byte
		if err := json.Unmarshal(b, &full); err != nil {
			return err
		}
		h.size, h.head = len(full), full[:h.cut(len(full))]
		if len(h.head) < len(full) {
			h.head = bytes.Clone(h.head)
		}
		return nil
	}
	return h.decode(b[1 : len(b)-1])
}

// cut is how many of size bytes of data the head keeps.
func (h *dataHead) cut(size int) int {
	if h.limit < 0 {
		return size
	}
	return min(size, h.limit)
}

// decode reads the size and head of standard base64 enc.
func (h *dataHead) decode(enc []byte) error {
	size, err := base64Len(enc)
	if err != nil {
		return err
	}
	n := len(enc)
	if h.limit >= 0 {
		n = min(n, (h.limit+2)/3*4)
	}
	head := make([]byte, base64.StdEncoding.DecodedLen(n))
	m, err := base64.StdEncoding.Decode(head, enc[:n])
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	h.size, h.head = size, head[:h.cut(m)]
	return nil
}

// dataKey starts the data field, the last of a line Append writes.
const dataKey = `,"data":"`

// decodeLine decodes a dead-letter line into d. A line as Append writes it,
// {...,"data":"<base64>"}, is cut before its data, so that the megabyte of
// base64 is checked once by base64Len rather than scanned twice by
// encoding/json; any other line is decoded by encoding/json whole. The cut is
// safe: inside a JSON string every '"' is escaped, so the first unescaped
// `,"data":"` is a key of the object or of a nested one, and in the second
// case what follows holds a '"', which is not base64.
func decodeLine(line []byte, scratch *[]byte, d *lineLetter) error {
	i := bytes.Index(line, []byte(dataKey))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || len(line)-2 < i+len(dataKey) {
		return json.Unmarshal(line, d)
	}
	if err := d.Data.decode(line[i+len(dataKey) : len(line)-2]); err != nil {
		return json.Unmarshal(line, d) // not base64 as the sink writes it
	}
	data := d.Data
	*scratch = append(append((*scratch)[:0], line[:i]...), '}')
	if err := json.Unmarshal(*scratch, d); err != nil {
		return err
	}
	d.Data = data
	return nil
}

// base64Len is the decoded length of standard, padded base64, checking
// every character (as a full decode would) without decoding.
func base64Len(enc []byte) (int, error) {
	if len(enc)%4 != 0 {
		return 0, errors.New("data: base64 length is not a multiple of 4")
	}
	pad := 0
	if len(enc) > 0 && enc[len(enc)-1] == '=' {
		pad++
		if enc[len(enc)-2] == '=' {
			pad++
		}
	}
	for i, c := range enc[:len(enc)-pad] {
		if !isBase64[c] {
			return 0, fmt.Errorf("data: %q at %d is not base64", c, i)
		}
	}
	return len(enc)/4*3 - pad, nil
}

// isBase64 is the standard alphabet.
var isBase64 = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()
