package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
)

// AWSConfig loads the SDK's standard configuration (environment, profiles,
// AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE> variables) in
// region, which comes from the stream's ARN and so wins over the default region.
// With role, credentials come from STS AssumeRole on it, refreshed before they
// expire by the credentials cache.
//
// Every attempt of every call made with the result (Kinesis, DynamoDB, STS,
// the credential providers) ends after callTimeout, answer read included: the
// KCL calls Kinesis with context.TODO and the SDK's default client waits for
// an answer forever, so one silent connection would stall a shard whose lease
// another goroutine keeps renewing. A timed-out attempt is retried by the
// SDK's retryer like a dropped connection. SubscribeToShard (enhanced fan-out)
// streams for up to 5 minutes: its answer must start within callTimeout, and
// the stream then lasts as long as Kinesis keeps it open.
func AWSConfig(ctx context.Context, region string, role *config.RoleARN, externalID, session string, callTimeout time.Duration) (aws.Config, error) {
	if callTimeout <= 0 {
		return aws.Config{}, fmt.Errorf("AWS call timeout %v: must be positive", callTimeout)
	}
	opts := []func(*awsconfig.LoadOptions) error{
		// A BuildableClient while loading: the SDK adds AWS_CA_BUNDLE to it.
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(callTimeout)),
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration (environment, profiles): %w", err)
	}
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = newDeadlineClient(b, callTimeout)
	}
	if role == nil {
		return cfg, nil
	}
	prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role.String(), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	})
	// Renew a minute (jittered) before expiry, so that no call ever carries
	// expired credentials.
	cfg.Credentials = aws.NewCredentialsCache(prov, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = time.Minute
		o.ExpiryWindowJitterFrac = 0.5
	})
	return cfg, nil
}

// deadlineClient sends each AWS call through a client with a whole-call
// deadline, except SubscribeToShard, whose event stream would be cut by one.
type deadlineClient struct {
	call, stream aws.HTTPClient
}

// newDeadlineClient derives both clients from b (its TLS settings kept).
func newDeadlineClient(b *awshttp.BuildableClient, timeout time.Duration) deadlineClient {
	return deadlineClient{
		call: b.WithTimeout(timeout),
		stream: b.WithTimeout(0).WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = timeout
		}),
	}
}

// Do implements aws.HTTPClient.
func (c deadlineClient) Do(req *http.Request) (*http.Response, error) {
	// The JSON protocols name the operation in X-Amz-Target
	// (Kinesis_20131202.SubscribeToShard).
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
		return c.stream.Do(req)
	}
	return c.call.Do(req)
}

// SessionName identifies the worker in CloudTrail; STS allows [\w+=,.@-]{2,64}.
func SessionName(workerID string) string {
	b := []byte("kinesis-ingest-" + workerID)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '-'
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
