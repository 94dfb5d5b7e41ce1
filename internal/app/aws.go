package app

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
func AWSConfig(ctx context.Context, region string, role *config.RoleARN, externalID, session string) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration (environment, profiles): %w", err)
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
