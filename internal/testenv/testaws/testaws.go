// Package testaws builds aws-sdk-go-v2 clients for local emulators (see
// internal/testenv/emulators) and has small helpers to create streams and put
// records, for the demo command and the benchmarks; internal/testenv/envtest
// wraps them for tests. It imports no testing.
//
// The configs are hermetic: they never read the environment, shared config
// files or instance metadata.
package testaws

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const (
	// Account is the default account of kinesis-mock; clients made by
	// Kinesis and Dynamo sign with it as their access key id.
	Account = "000000000000"
	// Region is the region all clients use.
	Region = "us-east-1"
)

// Timeout bounds the test helpers (envtest.CreateStream, envtest.PutJSON) on
// top of the test's own context.
const Timeout = 60 * time.Second

// Config returns a config for an emulator at endpoint (e.g.
// "http://127.0.0.1:4568"), signing with static credentials (accessKeyID,
// "secret"). kinesis-mock puts a request whose access key id is a 12-digit
// number into that account, so use a different accessKeyID per simulated
// account. Retries: standard retryer, 5 attempts, backoff capped at 1s.
func Config(endpoint string, accessKeyID string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, "secret", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = time.Second
			})
		},
	}
}

// Kinesis returns a Kinesis client for endpoint in account Account.
func Kinesis(endpoint string) *kinesis.Client {
	return kinesis.NewFromConfig(Config(endpoint, Account))
}

// Dynamo returns a DynamoDB client for endpoint (dynalite ignores the
// account; it signs as Account).
func Dynamo(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(endpoint, Account))
}

// CreateStreamCtx creates a provisioned stream with the given shard count,
// waits until it is ACTIVE (polling every 50ms until ctx is done) and returns
// its ARN.
func CreateStreamCtx(ctx context.Context, kc *kinesis.Client, name string, shards int) (string, error) {
	if shards < 1 {
		return "", fmt.Errorf("testaws: create stream %q: shard count %d < 1", name, shards)
	}
	n := int32(shards)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &name, ShardCount: &n}); err != nil {
		return "", fmt.Errorf("testaws: create stream %q: %w", name, err)
	}
	for {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		if err != nil {
			return "", fmt.Errorf("testaws: describe stream %q: %w", name, err)
		}
		sd := out.StreamDescriptionSummary
		if sd.StreamStatus == types.StreamStatusActive {
			return aws.ToString(sd.StreamARN), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("testaws: stream %q still %s: %w", name, sd.StreamStatus, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kinesis PutRecords limits.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20 // data + partition keys
	maxPutAttempts  = 20
)

// Put writes data[i] with partition key keys[i] to streamName using
// PutRecords, in batches of at most 500 records / 5 MiB, resending the
// entries a batch reports as failed (throttling, internal errors) with
// backoff until all are in, ctx is done, or 20 attempts fail.
//
// keys must have len(data) entries, or be empty: then record i gets key
// strconv.Itoa(i), which spreads records across shards. Records within a
// batch keep their order per shard unless some of them had to be resent.
func Put(ctx context.Context, kc *kinesis.Client, streamName string, data [][]byte, keys []string) error {
	if len(keys) != 0 && len(keys) != len(data) {
		return fmt.Errorf("testaws: put to %q: %d records but %d partition keys", streamName, len(data), len(keys))
	}
	entries := make([]types.PutRecordsRequestEntry, len(data))
	for i, d := range data {
		k := strconv.Itoa(i)
		if len(keys) != 0 {
			k = keys[i]
		}
		entries[i] = types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(k)}
	}
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < maxBatchRecords {
			sz := len(entries[n].Data) + len(*entries[n].PartitionKey)
			if n > 0 && size+sz > maxBatchBytes {
				break
			}
			size += sz
			n++
		}
		if err := putBatch(ctx, kc, streamName, entries[:n]); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

func putBatch(ctx context.Context, kc *kinesis.Client, stream string, batch []types.PutRecordsRequestEntry) error {
	backoff := 50 * time.Millisecond
	var lastErr error
	for attempt := 1; ; attempt++ {
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: batch})
		if err != nil {
			// The SDK already retried retryable errors.
			return fmt.Errorf("testaws: put %d records to %q: %w", len(batch), stream, err)
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		var failed []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, batch[i])
				lastErr = fmt.Errorf("%s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
			}
		}
		if len(failed) == 0 { // FailedRecordCount > 0 but no entry says which
			return fmt.Errorf("testaws: put to %q: FailedRecordCount %d but no failed entries", stream, aws.ToInt32(out.FailedRecordCount))
		}
		if attempt >= maxPutAttempts {
			return fmt.Errorf("testaws: put to %q: %d records still failing after %d attempts: %w", stream, len(failed), attempt, lastErr)
		}
		batch = failed
		select {
		case <-ctx.Done():
			return fmt.Errorf("testaws: put to %q: %d records still failing (%v): %w", stream, len(failed), lastErr, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
