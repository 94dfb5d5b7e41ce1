package main

// The suite against external endpoints (make test-localstack): with
// KINESIS_INGEST_EXTERNAL=1 and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_KINESIS
// and AWS_ENDPOINT_URL_DYNAMODB) naming a running LocalStack or other
// emulator, newEnv uses those endpoints instead of starting kinesis-mock and
// dynalite. Everything else about a test is the same: the workers get the
// endpoints through the same AWS_ENDPOINT_URL_* variables, sign as
// testaws.Account (LocalStack's account 000000000000) and write to the test's
// temporary directory.
//
// The endpoints are shared by every test, every run and anything else using
// them, so each test gets a stream of its own, named after the test and this
// run ("orders-TestX-k3j9"), deleted when the test ends. The lease table keeps
// its name (orders-ingest, which tests assert on) and is deleted before and
// after each test instead: tests run one at a time, so run one suite at a
// time per LocalStack. Every other table a test creates (tests name more lease
// tables) is deleted when it ends too; a run that was killed may leave some
// behind, which a later run could mistake for its own checkpoints: restart
// LocalStack then. Tests that stop or restart an emulator skip.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

var external struct {
	once     sync.Once
	kin, ddb *emulators.Server
	err      error
	run      string // this run's suffix for stream names
}

// externalServers returns the external endpoints, nil if the suite runs its
// own emulators; it calls t.Fatal if they are configured but do not answer.
func externalServers(t *testing.T) (kin, ddb *emulators.Server) {
	t.Helper()
	external.once.Do(func() {
		external.kin, external.ddb, external.err = emulators.External(context.Background())
		external.run = strconv.FormatUint(rand.Uint64()%(36*36*36*36), 36)
	})
	if external.err != nil {
		t.Fatal(external.err)
	}
	return external.kin, external.ddb
}

// skipIfExternal skips a test that cannot run against external endpoints.
func skipIfExternal(t *testing.T, why string) {
	t.Helper()
	if emulators.ExternalEnabled() {
		t.Skipf("skipped with %s=1 (external endpoints): %s", emulators.ExternalEnv, why)
	}
}

var notInName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// externalStreamName is a stream name unique to the test and this run.
func externalStreamName(t *testing.T) string {
	name := notInName.ReplaceAllString(t.Name(), "-")
	if len(name) > 80 {
		name = name[:80]
	}
	return "orders-" + name + "-" + external.run
}

// externalEnv is newEnv on the external endpoints, or nil if there are none.
func externalEnv(t *testing.T, shards int) *env {
	t.Helper()
	kin, ddb := externalServers(t)
	if kin == nil {
		return nil
	}
	e := &env{t: t, kin: kin, ddb: ddb, dir: t.TempDir(), stream: externalStreamName(t), table: "orders-ingest"}
	e.kc = testaws.Kinesis(kin.Endpoint)
	dc := testaws.Dynamo(ddb.Endpoint)
	if err := deleteTable(dc, e.table); err != nil { // a run that died may have left it
		t.Fatal(err)
	}
	// Tests name more lease tables than e.table (initpos-latest, ...): delete
	// every table the test created, so that the next run does not find
	// checkpoints of this run's streams under the same shard ids.
	before, err := listTables(dc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		after, err := listTables(dc)
		if err != nil {
			t.Error(err)
			return
		}
		for table := range after {
			if before[table] && table != e.table {
				continue
			}
			if err := deleteTable(dc, table); err != nil {
				t.Error(err)
			}
		}
	})
	e.arn = envtest.CreateStream(t, e.kc, e.stream, shards)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream), EnforceConsumerDeletion: aws.Bool(true)})
		var nf *ktypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Logf("delete stream %s on %s: %v", e.stream, kin.Endpoint, err)
		}
	})
	t.Logf("external endpoints: Kinesis %s, DynamoDB %s; stream %s, lease table %s", kin.Endpoint, ddb.Endpoint, e.stream, e.table)
	return e
}

// listTables returns the names of every DynamoDB table.
func listTables(dc *dynamodb.Client) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := map[string]bool{}
	p := dynamodb.NewListTablesPaginator(dc, &dynamodb.ListTablesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, n := range out.TableNames {
			names[n] = true
		}
	}
	return names, nil
}

// deleteTable deletes a DynamoDB table if it exists and waits until it is gone.
func deleteTable(dc *dynamodb.Client, table string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := dc.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	var nf *ddbtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete lease table %s: %w", table, err)
	}
	w := dynamodb.NewTableNotExistsWaiter(dc, func(o *dynamodb.TableNotExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		return fmt.Errorf("lease table %s still there after DeleteTable: %w", table, err)
	}
	return nil
}
