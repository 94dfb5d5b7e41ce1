package emulators_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

func TestEnsureInstalled(t *testing.T) {
	t.Parallel()
	start := time.Now()
	if err := emulators.EnsureInstalled(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureInstalled took %s (dir %s)", time.Since(start), emulators.Dir())
}

func TestKinesisRoundTrip(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := envtest.Kinesis(t)
	t.Logf("kinesis-mock ready at %s after %s", srv.Endpoint, time.Since(start))
	kc := testaws.Kinesis(srv.Endpoint)

	start = time.Now()
	arn := envtest.CreateStream(t, kc, "roundtrip", 2)
	t.Logf("CreateStream (2 shards) took %s: %s", time.Since(start), arn)
	if want := fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/roundtrip", testaws.Region, testaws.Account); arn != want {
		t.Errorf("arn = %q, want %q", arn, want)
	}

	const n = 100
	var data [][]byte
	var keys []string
	for i := range n {
		data = append(data, fmt.Appendf(nil, `{"id":%d,"name":"rec-%d"}`, i, i))
		keys = append(keys, fmt.Sprintf("key-%d", i))
	}
	envtest.PutJSON(t, kc, "roundtrip", data, keys)

	got := readAll(t, kc, "roundtrip")
	total := 0
	var all []string
	for shard, recs := range got {
		if len(recs) == 0 {
			t.Errorf("shard %s got no records; 100 distinct keys should hit both shards", shard)
		}
		total += len(recs)
		all = append(all, recs...)
	}
	if len(got) != 2 {
		t.Errorf("got %d shards, want 2", len(got))
	}
	if total != n {
		t.Fatalf("read %d records, want %d", total, n)
	}
	var want []string
	for _, d := range data {
		want = append(want, string(d))
	}
	sort.Strings(all)
	sort.Strings(want)
	for i := range want {
		if all[i] != want[i] {
			t.Fatalf("record mismatch: got %q, want %q", all[i], want[i])
		}
	}
}

func TestPutChunks(t *testing.T) {
	t.Parallel()
	srv := envtest.Kinesis(t)
	kc := testaws.Kinesis(srv.Endpoint)
	envtest.CreateStream(t, kc, "chunks", 1)
	// 1234 records: three PutRecords batches (500+500+234) into one shard,
	// more than a shard takes per second; nil keys spread by index.
	var data [][]byte
	for i := range 1234 {
		data = append(data, fmt.Appendf(nil, `{"i":%d}`, i))
	}
	start := time.Now()
	envtest.PutJSON(t, kc, "chunks", data, nil)
	t.Logf("put %d records in %s", len(data), time.Since(start))
	got := readAll(t, kc, "chunks")
	n := 0
	for _, recs := range got {
		n += len(recs)
	}
	if n != len(data) {
		t.Fatalf("read %d records, want %d", n, len(data))
	}
	if err := testaws.Put(t.Context(), kc, "chunks", data[:2], []string{"only-one"}); err == nil {
		t.Error("Put with 2 records and 1 key: want error")
	}
}

// readAll reads every record of every shard from TRIM_HORIZON, keyed by
// shard id.
func readAll(t *testing.T, kc *kinesis.Client, stream string) map[string][]string {
	t.Helper()
	ctx := t.Context()
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, sh := range shards.Shards {
		id := aws.ToString(sh.ShardId)
		out[id] = nil
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: &stream, ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for range 100 {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords %s: %v", id, err)
			}
			for _, r := range res.Records {
				out[id] = append(out[id], string(r.Data))
			}
			iter = res.NextShardIterator
			if iter == nil || (len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0) {
				break
			}
		}
	}
	return out
}

func TestKinesisAccounts(t *testing.T) {
	t.Parallel()
	srv := envtest.Kinesis(t)
	def := testaws.Kinesis(srv.Endpoint)
	other := kinesis.NewFromConfig(testaws.Config(srv.Endpoint, "111111111111"))

	arn := envtest.CreateStream(t, other, "acct", 1)
	if want := "arn:aws:kinesis:us-east-1:111111111111:stream/acct"; arn != want {
		t.Errorf("arn = %q, want %q", arn, want)
	}
	ls, err := def.ListStreams(t.Context(), &kinesis.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 0 {
		t.Errorf("account %s sees streams %v of account 111111111111", testaws.Account, ls.StreamNames)
	}
	// The same name can exist in both accounts.
	envtest.CreateStream(t, def, "acct", 1)
}

func TestDynamo(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := envtest.Dynamo(t)
	t.Logf("dynalite ready at %s after %s", srv.Endpoint, time.Since(start))
	dc := testaws.Dynamo(srv.Endpoint)
	ctx := t.Context()

	table := "leases"
	_, err := dc.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dtypes.KeyTypeHash}},
		BillingMode:          dtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := dynamodb.NewTableExistsWaiter(dc, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 20 * time.Millisecond
		o.MaxDelay = 200 * time.Millisecond
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	item := map[string]dtypes.AttributeValue{
		"pk":         &dtypes.AttributeValueMemberS{Value: "shard-0"},
		"checkpoint": &dtypes.AttributeValueMemberS{Value: "49590338271490256608559692538361571095921575989136588898"},
		"counter":    &dtypes.AttributeValueMemberN{Value: "7"},
	}
	if _, err := dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
		t.Fatal(err)
	}
	got, err := dc.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]dtypes.AttributeValue{"pk": &dtypes.AttributeValueMemberS{Value: "shard-0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cp, ok := got.Item["checkpoint"].(*dtypes.AttributeValueMemberS)
	if !ok || cp.Value != "49590338271490256608559692538361571095921575989136588898" {
		t.Errorf("checkpoint = %#v", got.Item["checkpoint"])
	}
	if c, ok := got.Item["counter"].(*dtypes.AttributeValueMemberN); !ok || c.Value != "7" {
		t.Errorf("counter = %#v", got.Item["counter"])
	}
}

func TestKinesisKillRestart(t *testing.T) {
	t.Parallel()
	srv := envtest.Kinesis(t)
	kc := testaws.Kinesis(srv.Endpoint)
	envtest.CreateStream(t, kc, "before-kill", 1)
	endpoint := srv.Endpoint

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	// Down: a single attempt must fail fast.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	_, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{}, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	cancel()
	if err == nil {
		t.Fatal("ListStreams succeeded after Kill")
	}
	if err := srv.Kill(); err != nil { // idempotent
		t.Fatal(err)
	}

	start := time.Now()
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart took %s", time.Since(start))
	if srv.Endpoint != endpoint {
		t.Fatalf("endpoint changed: %s -> %s", endpoint, srv.Endpoint)
	}
	ls, err := kc.ListStreams(t.Context(), &kinesis.ListStreamsInput{})
	if err != nil {
		t.Fatalf("ListStreams after Restart: %v", err)
	}
	if len(ls.StreamNames) != 0 {
		t.Errorf("streams survived a restart (emulator is in-memory): %v", ls.StreamNames)
	}
	envtest.CreateStream(t, kc, "after-restart", 1)
	envtest.PutJSON(t, kc, "after-restart", [][]byte{[]byte(`{}`)}, nil)

	// Restart of a running server works too.
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv, err := emulators.StartDynamo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartDynamo took %s", time.Since(start))
	log := srv.LogPath
	start = time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %s", time.Since(start))
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	dc := testaws.Dynamo(srv.Endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = dc.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("ListTables succeeded after Stop")
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log %s not removed by Stop: %v", log, err)
	}
}

func TestStopKinesisGraceful(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv, err := emulators.StartKinesis(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartKinesis took %s", time.Since(start))
	start = time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %s", time.Since(start))
}
