// Package getrecords decodes Kinesis GetRecords responses without the AWS
// SDK's generic deserializer, which was a worker's largest cost: in a profile
// of a whole run it took about 30% of the CPU between the first and the last
// record, and its allocations (a body buffer grown by doubling to twice the
// response, then a value and two string pointers per record) were two thirds
// of the worker's.
//
// The fast path takes the one shape GetRecords answers with, a Records array
// of plain members, NextShardIterator and MillisBehindLatest, and gives the
// output the SDK's deserializer gives for it, field for field
// (TestSameOutputAsTheSDK, FuzzDecode). Anything else, a child shard list, an
// escape or a non-ASCII byte inside a string, a member it does not know,
// null, an error status, goes to the SDK's deserializer with the same bytes.
package getrecords

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strconv"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/freelist"
	"github.com/kinesis-ingest/kinesis-ingest/internal/kit/jsontext"
)

// Option is a kinesis.Options function that installs the fast path on a
// client, for its GetRecords calls only. kinesis.New sets the protocol
// before it runs its option functions: a client made again from another's
// Options needs Option again.
func Option(o *kinesis.Options) {
	if _, ok := o.Protocol.(protocol); ok || o.Protocol == nil {
		return
	}
	o.Protocol = protocol{o.Protocol}
}

// Installed reports whether a client with options o reads GetRecords
// responses with the fast path.
func Installed(o kinesis.Options) bool {
	_, ok := o.Protocol.(protocol)
	return ok
}

// protocol is the client's protocol with GetRecords' successful responses
// decoded here.
type protocol struct {
	smithyhttp.ClientProtocol
}

// scratch is what one decoding needs only while it runs: the body and the
// records' members as they stand in it. Nothing decoded refers to either
// (the records' data and strings are copies), so they serve the next call.
type scratch struct {
	body []byte
	raw  []record
}

// scratches keeps 8, with bodies of at most maxKeptBody (a read of 1,000
// records of 500 bytes), so it never holds over about 16 MiB, which
// max_inflight_bytes does not count; a larger body is read into a buffer of
// its own size, left to the collector.
var scratches = freelist.New[*scratch](8)

const (
	maxKeptBody    = 1 << 20
	maxKeptRecords = 10000 // the most one GetRecords returns
	// maxBody bounds the one read of a body of known length: a GetRecords
	// response is at most 10 MB of records in base64, ~14 MB.
	maxBody = 64 << 20
)

func (p protocol) DeserializeResponse(ctx context.Context, schema *smithy.OperationSchema, reg *smithy.TypeRegistry, resp *smithyhttp.Response, out smithy.Deserializable) error {
	o, ok := out.(*kinesis.GetRecordsOutput)
	if !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 || resp.Header.Get("Content-Encoding") != "" {
		return p.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	sc, ok := scratches.Get()
	if !ok {
		sc = &scratch{}
	}
	body, err := readBody(sc.body[:0], resp.Body, resp.ContentLength)
	if err != nil {
		return &smithy.DeserializationError{Err: err}
	}
	sc.raw, ok = decode(body, o, sc.raw[:0])
	if !ok {
		// The SDK reads the same bytes; its output refers to none of them.
		// It closes the body it is given, so the one read here is closed
		// now (it is at its end: the connection goes back to the pool).
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		err = p.ClientProtocol.DeserializeResponse(ctx, schema, reg, resp, out)
	}
	// The members refer to this body: cleared, a kept scratch pins no
	// body but its own.
	clear(sc.raw)
	if cap(body) <= maxKeptBody && cap(sc.raw) <= maxKeptRecords {
		sc.body, sc.raw = body[:0], sc.raw[:0]
		scratches.Put(sc)
	}
	return err
}

// readBody reads r into buf, in one read of n bytes when the length is known.
func readBody(buf []byte, r io.Reader, n int64) ([]byte, error) {
	if n >= 0 && n <= maxBody {
		if int64(cap(buf)) < n {
			buf = make([]byte, 0, n+n/8)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		// A body longer than it said: read the rest as well, so that the
		// decoders see it whole (and decline).
		var one [1]byte
		if m, _ := r.Read(one[:]); m == 0 {
			return buf, nil
		}
		buf = append(buf, one[0])
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Decode fills out from a GetRecords response body and reports whether it
// could; when it cannot, out is as it was.
func Decode(body []byte, out *kinesis.GetRecordsOutput) bool {
	_, ok := decode(body, out, nil)
	return ok
}

// The top-level members, as bits of what decode has seen.
const (
	seenRecords = 1 << iota
	seenIterator
	seenLag
	seenChildren
)

// decode is Decode reading the records' members into raw's room; it
// returns raw for the next call.
func decode(body []byte, out *kinesis.GetRecordsOutput, raw []record) ([]record, bool) {
	d := decoder{b: body}
	var (
		res        kinesis.GetRecordsOutput
		childShard bool
		seen       uint8
	)
	if !d.consume('{') {
		return raw, false
	}
	if !d.consume('}') {
		for {
			key, ok := d.str()
			if !ok || !d.consume(':') {
				return raw, false
			}
			var bit uint8
			switch string(key) {
			case "Records":
				bit = seenRecords
				if raw, ok = d.records(raw); !ok {
					return raw, false
				}
			case "NextShardIterator":
				bit = seenIterator
				s, ok := d.str()
				if !ok {
					return raw, false
				}
				it := string(s)
				res.NextShardIterator = &it
			case "MillisBehindLatest":
				bit = seenLag
				n, ok := d.int()
				if !ok {
					return raw, false
				}
				res.MillisBehindLatest = &n
			case "ChildShards":
				// Only null (kinesis-mock's answer on an open shard) or the
				// empty list: a shard's end, with its children, is the
				// SDK's to read.
				bit = seenChildren
				switch {
				case d.null():
				case d.consume('['):
					if !d.consume(']') {
						return raw, false
					}
					childShard = true
				default:
					return raw, false
				}
			default:
				return raw, false
			}
			if seen&bit != 0 {
				return raw, false
			}
			seen |= bit
			if d.consume(',') {
				continue
			}
			if !d.consume('}') {
				return raw, false
			}
			break
		}
	}
	d.ws()
	if d.i != len(d.b) {
		return raw, false
	}
	if childShard {
		res.ChildShards = []types.ChildShard{}
	}
	if seen&seenRecords != 0 {
		recs, ok := build(raw)
		if !ok {
			return raw, false
		}
		res.Records = recs
	}
	out.Records, out.NextShardIterator, out.MillisBehindLatest, out.ChildShards = res.Records, res.NextShardIterator, res.MillisBehindLatest, res.ChildShards
	return raw, true
}

// record is one record's members as they stand in the body.
type record struct {
	seq, pk, data, enc []byte
	at                 float64
	has                uint8
}

const (
	hasSeq = 1 << iota
	hasAt
	hasData
	hasPK
	hasEnc
)

// records reads the Records array, appending to raw.
func (d *decoder) records(raw []record) ([]record, bool) {
	if !d.consume('[') {
		return raw, false
	}
	if d.consume(']') {
		return raw, true
	}
	for {
		r, ok := d.record()
		if !ok {
			return raw, false
		}
		raw = append(raw, r)
		if d.consume(',') {
			continue
		}
		return raw, d.consume(']')
	}
}

// build makes the records: their data in one block, their times and
// strings in one slice each.
func build(raw []record) ([]types.Record, bool) {
	dataLen := 0
	for i := range raw {
		dataLen += base64.StdEncoding.DecodedLen(len(raw[i].data))
	}
	recs := make([]types.Record, len(raw))
	times := make([]time.Time, 0, len(raw))
	strs := make([]string, 0, 2*len(raw))
	data := make([]byte, 0, dataLen)
	for i := range raw {
		r, out := &raw[i], &recs[i]
		if r.has&hasData != 0 {
			start := len(data)
			n, err := base64.StdEncoding.Decode(data[start:cap(data)], r.data)
			if err != nil {
				return nil, false
			}
			data = data[:start+n]
			// Three indexes: an append to one record's data cannot reach
			// the next one's.
			out.Data = data[start : start+n : start+n]
		}
		if r.has&hasSeq != 0 {
			strs = append(strs, string(r.seq))
			out.SequenceNumber = &strs[len(strs)-1]
		}
		if r.has&hasPK != 0 {
			strs = append(strs, string(r.pk))
			out.PartitionKey = &strs[len(strs)-1]
		}
		if r.has&hasAt != 0 {
			t, ok := epochSeconds(r.at)
			if !ok {
				return nil, false
			}
			times = append(times, t)
			out.ApproximateArrivalTimestamp = &times[len(times)-1]
		}
		if r.has&hasEnc != 0 {
			switch string(r.enc) {
			case "NONE":
				out.EncryptionType = types.EncryptionTypeNone
			case "KMS":
				out.EncryptionType = types.EncryptionTypeKms
			default:
				out.EncryptionType = types.EncryptionType(r.enc)
			}
		}
	}
	return recs, true
}

// epochSeconds is smithytime.ParseEpochSeconds without its big.Float (three
// allocations a record): that multiplies by 1,000 at 53 bits rounding to
// nearest even, which is float64's own multiplication, and truncates to
// milliseconds, as the conversion to int64 does, where the product fits in
// an int64; beyond that, it declines.
func epochSeconds(v float64) (time.Time, bool) {
	ms := v * 1000
	if !(ms > -9e18 && ms < 9e18) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ms)*1e6).UTC(), true
}

type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and c, if c is next.
func (d *decoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string with nothing to unescape or check in it: printable
// ASCII other than '"' and '\\'.
func (d *decoder) str() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	rest := d.b[d.i:]
	// No copy: PlainLen only reads the bytes, which nothing changes.
	n := jsontext.PlainLen(unsafe.String(unsafe.SliceData(rest), len(rest)))
	if n == len(rest) || rest[n] != '"' {
		return nil, false
	}
	d.i += n + 1
	return rest[:n], true
}

// null reads a null.
func (d *decoder) null() bool {
	d.ws()
	if bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// number reads a JSON number's token.
func (d *decoder) number() ([]byte, bool) {
	d.ws()
	start := d.i
	b := d.b
	i := d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return nil, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return nil, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return b[start:i], true
}

// int reads an integer of at most 18 digits (no fraction, no exponent).
func (d *decoder) int() (int64, bool) {
	tok, ok := d.number()
	if !ok {
		return 0, false
	}
	digits := tok
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if tok[0] == '-' {
		n = -n
	}
	return n, true
}

// record reads one record object.
func (d *decoder) record() (record, bool) {
	var r record
	if !d.consume('{') {
		return r, false
	}
	if d.consume('}') {
		return r, true
	}
	for {
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return r, false
		}
		var bit uint8
		switch string(key) {
		case "SequenceNumber":
			bit = hasSeq
			r.seq, ok = d.str()
		case "ApproximateArrivalTimestamp":
			bit = hasAt
			var tok []byte
			if tok, ok = d.number(); ok {
				var err error
				r.at, err = strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), 64)
				ok = err == nil
			}
		case "Data":
			bit = hasData
			r.data, ok = d.str()
		case "PartitionKey":
			bit = hasPK
			r.pk, ok = d.str()
		case "EncryptionType":
			bit = hasEnc
			r.enc, ok = d.str()
		default:
			return r, false
		}
		if !ok || r.has&bit != 0 {
			return r, false
		}
		r.has |= bit
		if d.consume(',') {
			continue
		}
		return r, d.consume('}')
	}
}
