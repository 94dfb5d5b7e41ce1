package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// AWS loads the SDK's standard configuration (environment, profiles,
// AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE> variables,
// AWS_CA_BUNDLE, the credential chain) once per region and derives from it
// every configuration a command needs: the checks', the lease table's and each
// source's. Loading costs about 10 ms of CPU with a CA bundle (every
// certificate is parsed), which a run paid four times before it shared one
// load; the credential chain's cache is shared too, so the checks' retrieval
// serves the worker.
//
// The load is per region, not per process: the credential chain is built with
// it (web identity calls STS in that region), and the region comes from the
// stream's ARN, winning over the default region. An AWS is for one command's
// life: a later command (or test) sees the environment as it is then.
type AWS struct {
	callTimeout time.Duration
	mu          sync.Mutex
	loaded      map[string]loadedAWS
}

type loadedAWS struct {
	cfg    aws.Config
	client *awshttp.BuildableClient
}

// NewAWS returns a loader whose loads, and the configurations derived by
// Config, give each attempt of each call callTimeout (see Config).
func NewAWS(callTimeout time.Duration) (*AWS, error) {
	if callTimeout <= 0 {
		return nil, fmt.Errorf("AWS call timeout %v: must be positive", callTimeout)
	}
	return &AWS{callTimeout: callTimeout, loaded: map[string]loadedAWS{}}, nil
}

// Shared returns the standard configuration loaded in region (loading it the
// first time) and the HTTP client it was loaded with, the CA bundle's roots
// in its TLS settings, to derive other clients from. The configuration is a
// copy: setting its fields changes no other caller's.
func (a *AWS) Shared(ctx context.Context, region string) (aws.Config, *awshttp.BuildableClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.loaded[region]; ok {
		return l.cfg, l.client, nil
	}
	opts := []func(*awsconfig.LoadOptions) error{
		// A BuildableClient while loading: the SDK adds AWS_CA_BUNDLE to it,
		// and the credential providers (IMDS, ECS, SSO, STS) call with it.
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(a.callTimeout).WithTransportOptions(keepConns)),
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("load AWS configuration (environment, profiles): %w", err)
	}
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return aws.Config{}, nil, fmt.Errorf("load AWS configuration: the SDK replaced the HTTP client with a %T; report this as a bug", cfg.HTTPClient)
	}
	a.loaded[region] = loadedAWS{cfg: cfg, client: b}
	return cfg, b, nil
}

// idleConnsPerHost is how many idle connections to one endpoint a worker
// keeps. The SDK keeps 10: a worker with more shards than that reading at
// once closed the connections beyond 10 after each call and opened new ones
// for the next (3 connects a second for an idle 64-shard worker on the
// emulator; on AWS each is a TLS handshake). Idle connections beyond what
// the worker's reads need are closed after the SDK's 90 s idle timeout.
const idleConnsPerHost = 256

func keepConns(tr *http.Transport) {
	tr.MaxIdleConnsPerHost = idleConnsPerHost
	// Kinesis, DynamoDB and STS: each may keep its share.
	tr.MaxIdleConns = 3 * idleConnsPerHost
}

// Config is the configuration the worker calls AWS with in region. With
// role, credentials come from STS AssumeRole on it, refreshed before they
// expire by the credentials cache.
//
// Every attempt of every call made with the result (Kinesis, DynamoDB, STS,
// the credential providers) ends after the call timeout, answer read
// included: the KCL calls Kinesis with context.TODO and the SDK's default
// client waits for an answer forever, so one silent connection would stall a
// shard whose lease another goroutine keeps renewing. A timed-out attempt is
// retried by the SDK's retryer like a dropped connection. SubscribeToShard
// (enhanced fan-out) streams for up to 5 minutes: its answer must start
// within the call timeout, and the stream then lasts as long as Kinesis keeps
// it open.
func (a *AWS) Config(ctx context.Context, region string, role *config.RoleARN, externalID, session string) (aws.Config, error) {
	cfg, b, err := a.Shared(ctx, region)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.HTTPClient = newDeadlineClient(b, a.callTimeout)
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

// AWSConfig is Config of a loader of its own, for a caller that needs one
// configuration.
func AWSConfig(ctx context.Context, region string, role *config.RoleARN, externalID, session string, callTimeout time.Duration) (aws.Config, error) {
	a, err := NewAWS(callTimeout)
	if err != nil {
		return aws.Config{}, err
	}
	return a.Config(ctx, region, role, externalID, session)
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
