package getrecords

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// recorder keeps the bodies of the GetRecords responses it passes on.
type recorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".GetRecords") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// What kinesis-mock (the engine LocalStack runs) answers takes the fast
// path, with the SDK's output: records of every size up to 1 MB, empty and
// binary data, partition keys of 256 characters, an empty read at the tip,
// and a closed shard's last read with its children, which goes to the SDK.
func TestKinesisMockResponses(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	srv, err := emulators.StartKinesis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	kc := testaws.Kinesis(srv.Endpoint)
	const stream = "fast-path"
	if _, err := testaws.CreateStreamCtx(ctx, kc, stream, 1); err != nil {
		t.Fatal(err)
	}
	var data [][]byte
	var keys []string
	for i, n := range []int{0, 1, 2, 3, 200, 1000, 64 << 10, 1<<20 - 300} {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(i*31 + j)
		}
		data = append(data, d)
		keys = append(keys, strings.Repeat(string(rune('a'+i)), 1+i*36))
	}
	if err := testaws.Put(ctx, kc, stream, data, keys); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: http.DefaultTransport}
	reader := kinesis.NewFromConfig(testaws.Config(srv.Endpoint, testaws.Account), func(o *kinesis.Options) {
		o.HTTPClient = &http.Client{Transport: rec}
	})
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	shard := shards.Shards[0].ShardId
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	got := 0
	for read := 0; got < len(data) || read < 2; read++ {
		out, err := reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		got += len(out.Records)
		iter = out.NextShardIterator
		if read > 20 {
			t.Fatalf("%d of %d records after %d reads", got, len(data), read)
		}
	}
	// Close the shard by splitting it: its last read lists the children.
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: shard, NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		out, err := reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ChildShards) > 0 {
			break
		}
		iter = out.NextShardIterator
		time.Sleep(100 * time.Millisecond)
	}

	fast, children := 0, 0
	for _, body := range rec.bodies {
		if checkAgainstSDK(t, body) {
			fast++
			continue
		}
		if bytes.Contains(body, []byte(`"ChildShards":[{`)) {
			children++
			continue
		}
		t.Errorf("the fast path declined a kinesis-mock response: %.300s", body)
	}
	if fast == 0 || children == 0 {
		t.Fatalf("%d responses took the fast path and %d had child shards, of %d: want some of each", fast, children, len(rec.bodies))
	}
}
