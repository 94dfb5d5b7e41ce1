package getrecords

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithytime "github.com/aws/smithy-go/time"
)

// canned answers every request with one response.
type canned struct {
	status int
	body   []byte
	length bool // send Content-Length
}

func (c *canned) Do(*http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/x-amz-json-1.1"}}
	n := int64(-1)
	if c.length {
		n = int64(len(c.body))
	}
	return &http.Response{StatusCode: c.status, Header: h, Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: n}, nil
}

func client(c *canned, fast bool) *kinesis.Client {
	opts := []func(*kinesis.Options){func(o *kinesis.Options) {
		o.HTTPClient = c
		o.RetryMaxAttempts = 1
	}}
	if fast {
		opts = append(opts, Option)
	}
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials:  aws.AnonymousCredentials{},
	}, opts...)
}

func getRecords(c *kinesis.Client) (*kinesis.GetRecordsOutput, error) {
	return c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
}

// same reports how a and b differ in what a GetRecords caller reads.
func same(a, b *kinesis.GetRecordsOutput) string {
	if !reflect.DeepEqual(a.Records, b.Records) {
		return fmt.Sprintf("records differ:\n%#v\n%#v", a.Records, b.Records)
	}
	if !reflect.DeepEqual(a.NextShardIterator, b.NextShardIterator) || !reflect.DeepEqual(a.MillisBehindLatest, b.MillisBehindLatest) {
		return fmt.Sprintf("iterator or lag differ: %v/%v against %v/%v", aws.ToString(a.NextShardIterator), aws.ToInt64(a.MillisBehindLatest), aws.ToString(b.NextShardIterator), aws.ToInt64(b.MillisBehindLatest))
	}
	if !reflect.DeepEqual(a.ChildShards, b.ChildShards) {
		return fmt.Sprintf("child shards differ: %#v against %#v", a.ChildShards, b.ChildShards)
	}
	return ""
}

// checkAgainstSDK decodes body with Decode and with the SDK's deserializer:
// where Decode takes it, the SDK must give the same output; and the client
// with Option installed must always answer as the SDK's does.
// The clients are made once (the fuzzer calls this in one goroutine): a
// client per call made the fuzzer's minimizing crawl.
var (
	answer   = &canned{status: 200}
	sdk      = client(answer, false)
	fastPath = client(answer, true)
)

func checkAgainstSDK(t *testing.T, body []byte) (took bool) {
	t.Helper()
	*answer = canned{200, body, true}
	want, wantErr := getRecords(sdk)
	var got kinesis.GetRecordsOutput
	took = Decode(body, &got)
	if took {
		if wantErr != nil {
			t.Fatalf("Decode took %q, the SDK refuses it: %v", body, wantErr)
		}
		if d := same(&got, want); d != "" {
			t.Fatalf("Decode(%q): %s", body, d)
		}
	}
	for _, length := range []bool{true, false} {
		*answer = canned{200, body, length}
		viaOpt, err := getRecords(fastPath)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("body %q: with the fast path the error is %v, the SDK's %v", body, err, wantErr)
		}
		if err == nil {
			if d := same(viaOpt, want); d != "" {
				t.Fatalf("body %q through the client: %s", body, d)
			}
		}
	}
	return took
}

func TestSameOutputAsTheSDK(t *testing.T) {
	data := base64.StdEncoding.EncodeToString([]byte(`{"id":1,"note":"é"}`))
	cases := []struct {
		name string
		body string
		took bool
	}{
		{"kinesis-mock's shape", `{"MillisBehindLatest":0,"NextShardIterator":"AAA=","Records":[{"ApproximateArrivalTimestamp":1733140000.123,"Data":"` + data + `","EncryptionType":"NONE","PartitionKey":"pk-1","SequenceNumber":"49590338271490256608559692538361571095921575989136588898"}]}`, true},
		{"AWS's shape, exponent timestamp", `{"ChildShards":[],"MillisBehindLatest":5000,"NextShardIterator":"x","Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.733140000123E9,"Data":"` + data + `","PartitionKey":"a"},{"SequenceNumber":"2","ApproximateArrivalTimestamp":1.7331400001239E9,"Data":"","PartitionKey":"b","EncryptionType":"KMS"}]}`, true},
		{"no records", `{"MillisBehindLatest":0,"NextShardIterator":"x","Records":[]}`, true},
		{"white space", " {\n \"Records\" : [ { \"Data\" : \"AAEC\" , \"SequenceNumber\" : \"1\" } ] ,\t\"MillisBehindLatest\":-1 }\n", true},
		{"integer timestamp", `{"Records":[{"ApproximateArrivalTimestamp":1733140000,"Data":"AA==","SequenceNumber":"1","PartitionKey":"p"}]}`, true},
		{"empty object", `{}`, true},
		{"a closed shard's children", `{"ChildShards":[{"HashKeyRange":{"EndingHashKey":"1","StartingHashKey":"0"},"ParentShards":["shardId-000000000000"],"ShardId":"shardId-000000000001"}],"MillisBehindLatest":0,"Records":[]}`, false},
		{"escape in a partition key", `{"Records":[{"Data":"AA==","PartitionKey":"a\u00e9","SequenceNumber":"1"}]}`, false},
		{"non-ASCII partition key", `{"Records":[{"Data":"AA==","PartitionKey":"é","SequenceNumber":"1"}]}`, false},
		{"unknown member", `{"Records":[],"Other":1}`, false},
		{"null", `{"NextShardIterator":null,"Records":[]}`, false},
		{"null child shards (kinesis-mock)", `{"ChildShards":null,"MillisBehindLatest":0,"NextShardIterator":"x","Records":[]}`, true},
		{"bad base64", `{"Records":[{"Data":"A","SequenceNumber":"1"}]}`, false},
		{"trailing bytes", `{"Records":[]} x`, false},
		{"duplicate member", `{"Records":[],"Records":[]}`, false},
		{"fractional lag", `{"MillisBehindLatest":1.5}`, false},
		{"truncated", `{"Records":[{"Data":"AA=="`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if took := checkAgainstSDK(t, []byte(c.body)); took != c.took {
				t.Fatalf("Decode took it: %v, want %v", took, c.took)
			}
		})
	}
}

// A generated batch like a busy shard's: the fast path takes it whole, and
// the records' data are apart (an append to one does not change the next).
func TestGeneratedBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		n := rng.IntN(300)
		body := batchBody(rng, n)
		if !checkAgainstSDK(t, body) {
			t.Fatalf("round %d: Decode declined a plain batch of %d records", round, n)
		}
		var out kinesis.GetRecordsOutput
		Decode(body, &out)
		if len(out.Records) != n {
			t.Fatalf("round %d: %d records, want %d", round, len(out.Records), n)
		}
		if n >= 2 {
			before := bytes.Clone(out.Records[1].Data)
			_ = append(out.Records[0].Data, 'x', 'y', 'z')
			if !bytes.Equal(out.Records[1].Data, before) {
				t.Fatalf("an append to record 0's data changed record 1's")
			}
		}
	}
}

// An error status goes to the SDK, which turns it into its typed error.
func TestErrorsAreTheSDKs(t *testing.T) {
	body := []byte(`{"__type":"ExpiredIteratorException","message":"Iterator expired"}`)
	_, err := getRecords(client(&canned{400, body, true}, true))
	var expired *types.ExpiredIteratorException
	if err == nil || !strings.Contains(err.Error(), "Iterator expired") || !errors.As(err, &expired) {
		t.Fatalf("err = %v, want the SDK's ExpiredIteratorException", err)
	}
}

func batchBody(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"MillisBehindLatest":`)
	fmt.Fprint(&b, rng.IntN(100000))
	b.WriteString(`,"NextShardIterator":"AAAAAAAAAAE`)
	fmt.Fprint(&b, rng.Uint64())
	b.WriteString(`=","Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		data := make([]byte, rng.IntN(400))
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		ts := 1.7e9 + rng.Float64()*1e8
		fmt.Fprintf(&b, `{"SequenceNumber":"4959%050d","ApproximateArrivalTimestamp":%s,"Data":"%s","PartitionKey":"key-%d","EncryptionType":"NONE"}`,
			rng.Uint64(), formatTS(rng, ts), base64.StdEncoding.EncodeToString(data), rng.IntN(1000))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// formatTS writes a timestamp the ways servers do: fixed decimals, or
// Java's exponent form.
func formatTS(rng *rand.Rand, ts float64) string {
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprintf("%.3f", ts)
	case 1:
		return strings.ToUpper(fmt.Sprintf("%.12e", ts))
	default:
		return fmt.Sprint(ts)
	}
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 3} {
		f.Add(batchBody(rng, n))
	}
	f.Add([]byte(`{"Records":[{"Data":"AA==","SequenceNumber":"1","ApproximateArrivalTimestamp":1e3}]}`))
	f.Add([]byte(`{"ChildShards":[],"Records":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstSDK(t, body)
	})
}

// BenchmarkGetRecords is one GetRecords call of 1,000 records of ~200
// bytes through a client whose transport answers from memory: the SDK's
// deserializer against the fast path, the rest of the SDK's stack the same.
//
//	go test -run '^$' -bench '^BenchmarkGetRecords$' -benchmem ./consumers/getrecords
func BenchmarkGetRecords(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	body := batchBody(rng, 1000)
	for _, c := range []struct {
		name string
		fast bool
	}{{"sdk", false}, {"fast", true}} {
		b.Run(c.name, func(b *testing.B) {
			kc := client(&canned{200, body, true}, c.fast)
			b.ReportAllocs()
			for b.Loop() {
				out, err := getRecords(kc)
				if err != nil || len(out.Records) != 1000 {
					b.Fatalf("%d records, %v", len(out.Records), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/record")
		})
	}
}

// epochSeconds gives smithytime.ParseEpochSeconds' time wherever it takes a
// value: seconds now and in every era, with and without fractions, and
// values at the edge of what it takes.
func TestEpochSecondsIsTheSDKs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	vals := []float64{0, -0.0, 1, -1, 0.0005, 0.0015, 1733140000.123, 1.7331400001239e9, 1e-300, 5e-324, -1e-300, 8.99e15, -8.99e15, 9.2e15, 1e18}
	for range 200000 {
		switch rng.IntN(4) {
		case 0:
			vals = append(vals, 1.7e9+rng.Float64()*1e8)
		case 1:
			vals = append(vals, float64(rng.Int64N(4e9))+float64(rng.IntN(1000))/1000)
		case 2:
			vals = append(vals, (rng.Float64()-0.5)*2e16)
		default:
			vals = append(vals, math.Float64frombits(rng.Uint64()))
		}
	}
	took := 0
	for _, v := range vals {
		got, ok := epochSeconds(v)
		if !ok {
			continue
		}
		took++
		if want := smithytime.ParseEpochSeconds(v); !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("epochSeconds(%v) = %v, the SDK's %v", v, got, want)
		}
	}
	if took < len(vals)/2 {
		t.Fatalf("took %d of %d values", took, len(vals))
	}
}

// Shards read at once through one client: the body buffers they share
// between calls never show in another call's records (run with -race).
func TestConcurrentReads(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			for range 20 {
				body := batchBody(rng, 1+rng.IntN(50))
				var want kinesis.GetRecordsOutput
				if !Decode(body, &want) {
					t.Errorf("declined a generated batch")
					return
				}
				got, err := getRecords(client(&canned{200, body, rng.IntN(2) == 0}, true))
				if err != nil {
					t.Error(err)
					return
				}
				if d := same(got, &want); d != "" {
					t.Error(d)
					return
				}
			}
		}()
	}
	wg.Wait()
}
