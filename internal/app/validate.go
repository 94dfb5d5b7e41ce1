package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
)

// Validate is the commit-time check: with each source's own credentials (its
// role assumed), the stream exists, is readable and has shards; the lease table
// is reachable. It returns every problem at once, each naming the source.
func Validate(ctx context.Context, cfg *config.Config) error {
	var errs []error
	workerID := cfg.Consumer.WorkerID
	for i, src := range cfg.Sources {
		path := fmt.Sprintf("sources[%d] (%s)", i, src.Name)
		k := src.Kinesis
		acfg, err := awsConfig(ctx, k.StreamARN.Region, k.RoleARN, k.ExternalID, sessionName(workerID))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		if _, err := acfg.Credentials.Retrieve(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: get credentials%s: %w", path, roleText(k.RoleARN), err))
			continue
		}
		kc := kinesis.NewFromConfig(acfg)
		arn := k.StreamARN.String()
		sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: describe stream %s%s: %w", path, arn, roleText(k.RoleARN), explain(err)))
			continue
		}
		if st := sum.StreamDescriptionSummary.StreamStatus; st != types.StreamStatusActive && st != types.StreamStatusUpdating {
			errs = append(errs, fmt.Errorf("%s: stream %s is %s, not ACTIVE", path, arn, st))
			continue
		}
		if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: aws.String(arn), MaxResults: aws.Int32(1)}); err != nil {
			errs = append(errs, fmt.Errorf("%s: list shards of %s%s: %w", path, arn, roleText(k.RoleARN), explain(err)))
		}
	}
	if len(cfg.Sources) > 0 {
		lcfg, err := awsConfig(ctx, cfg.Sources[0].Kinesis.StreamARN.Region, cfg.Consumer.RoleARN, "", sessionName(workerID))
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer: %w", err))
		} else {
			ddb := dynamodb.NewFromConfig(lcfg)
			for _, src := range cfg.Sources {
				table := LeaseTable(cfg, src.Name)
				_, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
				var nf *ddbtypes.ResourceNotFoundException
				if err != nil && !errors.As(err, &nf) { // a missing table is created at run
					errs = append(errs, fmt.Errorf("consumer: lease table %q: %w", table, explain(err)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func roleText(r *config.RoleARN) string {
	if r == nil {
		return ""
	}
	return " as role " + r.String()
}

// explain adds what to do to the AWS errors a user meets at commit time.
func explain(err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("stream not found: check stream_arn's account, region and name, and that role_arn is in the stream's account: %w", err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
			return fmt.Errorf("permission denied: grant the role kinesis:DescribeStreamSummary, ListShards, GetShardIterator and GetRecords on the stream (see the README): %w", err)
		case "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException":
			return fmt.Errorf("credentials rejected: check the worker's AWS credentials and role_arn: %w", err)
		}
	}
	return err
}
