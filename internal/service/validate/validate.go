// Package validate runs the commit-time checks of a configuration (the
// `kinesis-ingest validate` command, and the first thing `run` does): the
// credentials the worker will use, each stream, its shards, the lease tables,
// every sink. Each check is a line with a failure class and what to do, so that
// a bad ARN, a missing stream or a missing permission is reported before any
// record is read rather than at run time.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
)

// Class says why a check failed.
type Class string

// Failure classes.
const (
	ClassNotFound      Class = "not_found"           // stream (or its shards) does not exist
	ClassAccessDenied  Class = "access_denied"       // IAM (or file permissions) refused
	ClassThrottled     Class = "throttled"           // AWS throttled the calls
	ClassUnreachable   Class = "unreachable"         // no answer from the endpoint (refused, DNS, timeout)
	ClassUnavailable   Class = "unavailable"         // the endpoint answered that it cannot serve now (HTTP 5xx, a database starting or shutting down)
	ClassInvalidARN    Class = "invalid_arn"         // an ARN is malformed or refused as such
	ClassCredentials   Class = "invalid_credentials" // no credentials, or the worker's own credentials were rejected
	ClassWrongAccount  Class = "wrong_account"       // the credentials reach a stream of that name in another account
	ClassNotActive     Class = "not_active"          // the stream is CREATING or DELETING
	ClassNotWritable   Class = "not_writable"        // a sink directory cannot be written (not a directory, disk full, ...)
	ClassInvalidConfig Class = "invalid_config"      // the configuration file is invalid
	ClassLimit         Class = "limit_exceeded"      // a Kinesis limit is reached (20 enhanced fan-out consumers per stream)
	ClassOther         Class = "error"               // anything else
)

// Check is one commit-time check and its outcome.
type Check struct {
	// Name says what was checked, e.g. "source orders: stream exists".
	Name string
	// OK is true when the check passed or was not run (Skipped).
	OK bool
	// Skipped, when not empty, says why the check was not run: a check it
	// needs failed, or this build cannot check that kind of sink.
	Skipped string
	// Detail says what a passing check found.
	Detail string
	// Class, Err and Hint describe a failure: its kind, the error, and what
	// to do about it.
	Class Class
	Err   error
	Hint  string
}

// String is the check as one line: "ok    NAME: DETAIL",
// "skip  NAME: not checked: WHY" or "FAIL  NAME [CLASS]: ERROR; fix: HINT".
func (c Check) String() string {
	switch {
	case c.Skipped != "":
		return "skip  " + OneLine(c.Name+": not checked: "+c.Skipped)
	case c.OK:
		if c.Detail == "" {
			return "ok    " + OneLine(c.Name)
		}
		return "ok    " + OneLine(c.Name+": "+c.Detail)
	}
	s := fmt.Sprintf("%s [%s]: %v", c.Name, c.Class, c.Err)
	if c.Hint != "" {
		s += "; fix: " + c.Hint
	}
	return "FAIL  " + OneLine(s)
}

// OneLine folds s (a message that may carry a YAML snippet or a multi-line
// error) onto one line, as every line of a report is.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Transient reports whether c failed for a reason that passes by itself (an
// outage: unreachable, unavailable or throttled), as opposed to one that
// needs a change to the config, the permissions or the resources.
func (c Check) Transient() bool {
	switch c.Class {
	case ClassUnreachable, ClassUnavailable, ClassThrottled:
		return !c.OK
	}
	return false
}

// Report is the outcome of Run.
type Report struct {
	Checks []Check
	// Warnings are problems found while checking that do not fail a check,
	// each prefixed with a YAML path like the config's warnings.
	Warnings []string
}

// OK reports whether every check passed (or was not run).
func (r *Report) OK() bool { return len(r.Failed()) == 0 }

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// CheckTimeout bounds each check. Calls are retried at most twice, with at
// most a second between attempts, so a check of an endpoint that does not
// answer fails quickly instead of hanging.
var CheckTimeout = 10 * time.Second

// Run runs the commit-time checks, in order, with the credentials the
// worker will use (each source's role assumed):
//
//   - per source: credentials (role assumable, when role_arn is set); the
//     stream exists in the credentials' account, is stream_arn, and is ACTIVE
//     or UPDATING (DescribeStreamSummary); shards listable (ListShards);
//     shards readable (GetShardIterator on one); its AWS Glue schema
//     registry, if it has one, readable (GetRegistry, with the credentials
//     the decoder will use);
//   - the consumer's role assumable, when consumer.role_arn is set; each lease
//     table reachable, or created if missing (as run would), with the right key;
//   - every sink and the dead-letter sink, as its kind probes it: a file
//     sink's directory writable (a probe file is created, fsynced and
//     removed in it, the directory created if missing); a PostgreSQL table
//     reachable and fitting its dataset, or missing and creatable.
//
// The consumer addresses the stream by name in the account of its credentials
// (the KCL's way), so the stream check looks it up by name and requires that
// to resolve to stream_arn. A check that needs a failed one is skipped. An
// init_position timestamp older than the stream's retention is a warning.
func Run(ctx context.Context, cfg *config.Config, opts ...Option) *Report {
	v := &validator{cfg: cfg, rep: &Report{}, session: app.SessionName(cfg.Consumer.WorkerID)}
	for _, opt := range opts {
		opt(v)
	}
	if v.aws == nil {
		var err error
		if v.aws, err = app.NewAWS(cfg.Consumer.CallTimeout); err != nil {
			v.add(fail("AWS configuration", ClassOther, err, "set consumer.call_timeout to a positive duration"))
			return v.rep
		}
	}
	for i, src := range cfg.Sources {
		v.source(ctx, i, src)
		v.glueRegistry(ctx, src)
	}
	v.leaseTables(ctx)
	// Every sink, by its kind (internal/service/sinkreg): a file sink's directory
	// writable, a PostgreSQL table reachable and fitting its dataset (or
	// creatable).
	for _, c := range sinkChecks(ctx, cfg) {
		v.add(c)
	}
	return v.rep
}

// Option changes how Run checks.
type Option func(*validator)

// WithAWS has the checks derive their AWS configurations from ac, the loader
// the command then builds the worker with (app.WithAWS), so that a run loads
// the standard configuration once. Without it Run loads its own.
func WithAWS(ac *app.AWS) Option { return func(v *validator) { v.aws = ac } }

type validator struct {
	cfg     *config.Config
	rep     *Report
	session string
	aws     *app.AWS
	// streams holds, per source, what the stream check found, for the lease
	// table check (is the table this stream's?).
	streams map[string]streamFound
}

type streamFound struct {
	index   int
	arn     string
	created time.Time
}

func (v *validator) add(c Check) { v.rep.Checks = append(v.rep.Checks, c) }

func (v *validator) skip(why string, names ...string) {
	for _, n := range names {
		v.add(Check{Name: n, OK: true, Skipped: why})
	}
}

func fail(name string, class Class, err error, hint string) Check {
	return Check{Name: name, Class: class, Err: err, Hint: hint}
}

func pass(name, detail string) Check { return Check{Name: name, OK: true, Detail: detail} }

func (v *validator) source(ctx context.Context, i int, src config.Source) {
	k := src.Kinesis
	arn := k.StreamARN.String()
	prefix := "source " + src.Name + ": "
	credName := prefix + "credentials"
	if k.RoleARN != nil {
		credName = prefix + "role assumable"
	}
	streamName, listName, readName := prefix+"stream exists", prefix+"shards listable", prefix+"shards readable"

	acfg, ok := v.credentials(ctx, credName, k.StreamARN.Region, k.RoleARN, k.ExternalID)
	if !ok {
		v.skip("needs "+credName, streamName, listName, readName)
		return
	}
	kc := kinesis.NewFromConfig(acfg)
	name := aws.String(k.StreamARN.Name)

	// The stream, looked up by name as the consumer will.
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	sum, err := kc.DescribeStreamSummary(cctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	cancel()
	if err != nil {
		class := classify(err)
		hint := hintFor(class, "kinesis", "grant the credentials kinesis:DescribeStreamSummary, ListShards, GetShardIterator and GetRecords on "+arn+" (see role_arn in the README)")
		if class == ClassNotFound {
			err = fmt.Errorf("stream not found: %w", err)
			hint = fmt.Sprintf("check stream_arn's account, region and name; the stream is read by name in the account of the credentials, so role_arn must be a role in account %s", k.StreamARN.Account)
			// Reachable by ARN (another account's stream shared through a
			// resource policy) but not by name: the consumer would not find it.
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			_, aerr := kc.DescribeStreamSummary(cctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)})
			cancel()
			if aerr == nil {
				class = ClassWrongAccount
				err = fmt.Errorf("stream %s exists but is not in the account of the credentials%s, where the consumer looks it up by name: %w", arn, roleText(k.RoleARN), err)
				hint = fmt.Sprintf("set role_arn to a role in account %s that may read the stream", k.StreamARN.Account)
			}
		}
		v.add(fail(streamName, class, err, hint))
		v.skip("needs "+streamName, listName, readName)
		return
	}
	d := sum.StreamDescriptionSummary
	if got := aws.ToString(d.StreamARN); got != arn {
		v.add(fail(streamName, ClassWrongAccount,
			fmt.Errorf("the credentials%s reach stream %s, not stream_arn %s: the consumer would read the wrong stream", roleText(k.RoleARN), got, arn),
			fmt.Sprintf("the stream is read by name in the account of the credentials: set role_arn to a role in account %s (and region %s)", k.StreamARN.Account, k.StreamARN.Region)))
		v.skip("needs "+streamName, listName, readName)
		return
	}
	if d.StreamStatus != types.StreamStatusActive && d.StreamStatus != types.StreamStatusUpdating {
		v.add(fail(streamName, ClassNotActive, fmt.Errorf("stream %s is %s, not ACTIVE or UPDATING", arn, d.StreamStatus),
			"wait until the stream is ACTIVE (CREATING takes a minute), or recreate it if it is DELETING"))
		v.skip("needs "+streamName, listName, readName)
		return
	}
	retention := time.Duration(aws.ToInt32(d.RetentionPeriodHours)) * time.Hour
	if v.streams == nil {
		v.streams = map[string]streamFound{}
	}
	v.streams[src.Name] = streamFound{index: i, arn: aws.ToString(d.StreamARN), created: aws.ToTime(d.StreamCreationTimestamp)}
	v.add(pass(streamName, fmt.Sprintf("%s %s, %d open shards, retention %dh", arn, d.StreamStatus, aws.ToInt32(d.OpenShardCount), aws.ToInt32(d.RetentionPeriodHours))))
	if p := k.InitPosition.Resolve(time.Now()); p.Kind == config.AtTimestamp && retention > 0 {
		if oldest := time.Now().Add(-retention); p.Timestamp.Before(oldest) {
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("sources[%d].kinesis.init_position: %s is before the retention of stream %s (%dh: nothing older than about %s is kept); shards without a checkpoint start at the oldest retained record, as with trim_horizon",
				i, p, k.StreamARN.Name, aws.ToInt32(d.RetentionPeriodHours), oldest.UTC().Format(time.RFC3339)))
		}
	}

	readHint := "grant the credentials kinesis:ListShards, GetShardIterator and GetRecords on " + arn + " and " + arn + "/* (see role_arn in the README)"
	cctx, cancel = context.WithTimeout(ctx, CheckTimeout)
	ls, err := kc.ListShards(cctx, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(1000)})
	cancel()
	if err == nil && len(ls.Shards) == 0 {
		err = fmt.Errorf("stream %s has no shards", arn)
	}
	if err != nil {
		class := classify(err)
		v.add(fail(listName, class, err, hintFor(class, "kinesis", readHint)))
		v.skip("needs "+listName, readName)
		return
	}
	shard := ls.Shards[0]
	open := 0
	for _, s := range ls.Shards {
		if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
			if open == 0 {
				shard = s
			}
			open++
		}
	}
	more := ""
	if ls.NextToken != nil {
		more = "+"
	}
	v.add(pass(listName, fmt.Sprintf("%d%s shards, %d%s open", len(ls.Shards), more, open, more)))

	cctx, cancel = context.WithTimeout(ctx, CheckTimeout)
	_, err = kc.GetShardIterator(cctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: shard.ShardId, ShardIteratorType: types.ShardIteratorTypeLatest})
	cancel()
	if err != nil {
		class := classify(err)
		v.add(fail(readName, class, err, hintFor(class, "kinesis", readHint)))
		return
	}
	v.add(pass(readName, "GetShardIterator on "+aws.ToString(shard.ShardId)))
	if k.EFO != nil {
		v.add(efoCheck(ctx, prefix+"enhanced fan-out consumer", kc, arn, k.EFO))
	}
}

// glueRegistry checks the AWS Glue Schema Registry of a source's format, if
// it has one: GetRegistry with the decoder's credentials (the registry's
// role_arn, else the source's), in the registry's region. It cannot check
// glue:GetSchemaVersion without a version id, so its hint names both.
func (v *validator) glueRegistry(ctx context.Context, src config.Source) {
	f := src.Kinesis.Format
	if f.Avro == nil || f.Avro.Registry == nil || f.Avro.Registry.Glue == nil {
		return
	}
	g := f.Avro.Registry.Glue
	name := "source " + src.Name + ": glue schema registry readable"
	role, ext := src.Kinesis.RoleARN, src.Kinesis.ExternalID
	if g.RoleARN != nil {
		role, ext = g.RoleARN, g.ExternalID
	}
	acfg, _, err := v.checkAWSConfig(ctx, g.Region, role, ext)
	if err != nil {
		v.add(fail(name, ClassCredentials, err, "fix the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	out, err := glue.NewFromConfig(acfg).GetRegistry(cctx, &glue.GetRegistryInput{RegistryId: &gluetypes.RegistryId{RegistryName: aws.String(g.RegistryName)}})
	cancel()
	if err == nil {
		v.add(pass(name, fmt.Sprintf("%s %s", aws.ToString(out.RegistryArn), out.Status)))
		return
	}
	class := classify(err)
	var nf *gluetypes.EntityNotFoundException
	if errors.As(err, &nf) {
		class = ClassNotFound
	}
	hint := hintFor(class, "glue", fmt.Sprintf("grant the credentials%s glue:GetRegistry on registry %s and glue:GetSchemaVersion on its schemas (arn:aws:glue:%s:<account>:registry/%s and arn:aws:glue:%s:<account>:schema/%s/*)",
		roleText(role), g.RegistryName, g.Region, g.RegistryName, g.Region, g.RegistryName))
	if class == ClassNotFound {
		hint = fmt.Sprintf("check format.avro.registry.glue: registry_name %q in region %s, in the account of the credentials%s", g.RegistryName, g.Region, roleText(role))
	}
	v.add(fail(name, class, fmt.Errorf("get glue schema registry %q: %w", g.RegistryName, err), hint))
}

// maxStreamConsumers is Kinesis's limit of enhanced fan-out consumers
// registered on one stream.
const maxStreamConsumers = 20

// efoCheck checks the enhanced fan-out consumer a source names: a
// consumer_arn must exist and not be DELETING; a consumer_name must exist,
// or the stream must have room for it (fewer than 20 consumers), since the
// first worker registers it. SubscribeToShard itself is not tried: a probe
// subscription would hold the shard's subscription slot from the workers for
// 5 seconds.
func efoCheck(ctx context.Context, name string, kc *kinesis.Client, streamARN string, e *config.EFO) Check {
	hint := "grant the credentials kinesis:DescribeStreamConsumer, ListStreamConsumers, RegisterStreamConsumer and SubscribeToShard on " + streamARN + " and " + streamARN + "/consumer/* (README: Enhanced fan-out)"
	in := &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(e.ConsumerName)}
	what := fmt.Sprintf("consumer %q of %s", e.ConsumerName, streamARN)
	if e.ConsumerARN != "" {
		in = &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(e.ConsumerARN)}
		what = "consumer " + e.ConsumerARN
	}
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	d, err := kc.DescribeStreamConsumer(cctx, in)
	if err == nil {
		c := d.ConsumerDescription
		switch c.ConsumerStatus {
		case types.ConsumerStatusActive:
			return pass(name, what+" ACTIVE")
		case types.ConsumerStatusCreating:
			return pass(name, what+" CREATING; workers wait until it is ACTIVE")
		default:
			return fail(name, ClassNotActive, fmt.Errorf("%s is %s", what, c.ConsumerStatus),
				"wait until the deregistration ends; with consumer_name the first worker then registers it anew, with consumer_arn register a new one and give its ARN")
		}
	}
	class := classify(err)
	if class != ClassNotFound {
		return fail(name, class, fmt.Errorf("describe %s: %w", what, err), hintFor(class, "kinesis", hint))
	}
	if e.ConsumerARN != "" {
		return fail(name, ClassNotFound, fmt.Errorf("%s not found: %w", what, err),
			"register it (aws kinesis register-stream-consumer) and give the ARN it prints, or give efo.consumer_name to have the workers register one")
	}
	var n int
	var token *string
	for {
		out, err := kc.ListStreamConsumers(cctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN), NextToken: token})
		if err != nil {
			class := classify(err)
			return fail(name, class, fmt.Errorf("list the consumers of %s: %w", streamARN, err), hintFor(class, "kinesis", hint))
		}
		n += len(out.Consumers)
		if token = out.NextToken; token == nil {
			break
		}
	}
	if n >= maxStreamConsumers {
		return fail(name, ClassLimit, fmt.Errorf("%s is not registered and stream %s already has %d consumers, Kinesis's limit", what, streamARN, n),
			"deregister a consumer the stream no longer needs (aws kinesis deregister-stream-consumer), or share one through efo.consumer_arn")
	}
	return pass(name, fmt.Sprintf("%s not registered yet; the first worker registers it (%d of %d consumers in use)", what, n, maxStreamConsumers))
}

// credentials loads the AWS configuration for a check and retrieves its
// credentials (assuming role), adding the check named name.
func (v *validator) credentials(ctx context.Context, name, region string, role *config.RoleARN, externalID string) (aws.Config, bool) {
	acfg, base, err := v.checkAWSConfig(ctx, region, role, externalID)
	if err != nil {
		v.add(fail(name, ClassCredentials, err, "fix the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"))
		return acfg, false
	}
	// The worker's own credentials: used as they are, or to call STS with.
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	creds, err := base.Retrieve(cctx)
	cancel()
	if err != nil {
		if role != nil {
			err = fmt.Errorf("the worker's own credentials, to assume role %s with: %w", role, err)
		}
		v.add(fail(name, ClassCredentials, err, "give the worker AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance or task role"))
		return acfg, false
	}
	if role != nil {
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		creds, err = acfg.Credentials.Retrieve(cctx)
		cancel()
		if err != nil {
			class := classify(err)
			hint := hintFor(class, "sts", fmt.Sprintf("let the worker's principal assume %s: the role's trust policy must allow it sts:AssumeRole, with the external_id it requires", role))
			v.add(fail(name, class, fmt.Errorf("assume role %s: %w", role, err), hint))
			return acfg, false
		}
	}
	if role == nil {
		v.add(pass(name, "from "+creds.Source))
	} else {
		detail := fmt.Sprintf("%s as session %s", role, v.session)
		if creds.CanExpire {
			detail += fmt.Sprintf(", credentials expire at %s", creds.Expires.UTC().Format(time.RFC3339))
		}
		v.add(pass(name, detail))
	}
	return acfg, true
}

func (v *validator) leaseTables(ctx context.Context) {
	cfg := v.cfg
	if len(cfg.Sources) == 0 {
		return
	}
	var tables []string
	seen, alt := map[string]bool{}, map[string]string{}
	for _, src := range cfg.Sources {
		if t := app.LeaseTable(cfg, src.Name); !seen[t] {
			seen[t] = true
			tables = append(tables, t)
			alt[t] = otherLeaseTable(cfg, src.Name)
		}
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = "lease table " + t + ": reachable"
	}
	var lcfg aws.Config
	if role := cfg.Consumer.RoleARN; role != nil {
		credName := "consumer: role assumable"
		var ok bool
		if lcfg, ok = v.credentials(ctx, credName, cfg.Sources[0].Kinesis.StreamARN.Region, role, ""); !ok {
			v.skip("needs "+credName, names...)
			return
		}
	} else {
		var err error
		if lcfg, _, err = v.checkAWSConfig(ctx, cfg.Sources[0].Kinesis.StreamARN.Region, nil, ""); err != nil {
			for _, n := range names {
				v.add(fail(n, ClassCredentials, err, "fix the AWS configuration (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"))
			}
			return
		}
	}
	ddb := dynamodb.NewFromConfig(lcfg)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, table := range tables {
		hint := fmt.Sprintf("grant the consumer's credentials dynamodb:DescribeTable, CreateTable, GetItem, PutItem, UpdateItem, DeleteItem and Scan on table %s, or set consumer.role_arn", table)
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		_, err := ddb.DescribeTable(cctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var nf *ddbtypes.ResourceNotFoundException
		existed := err == nil
		if err != nil && !errors.As(err, &nf) {
			cancel()
			class := classify(err)
			v.add(fail(names[i], class, err, hintFor(class, "dynamodb", hint)))
			continue
		}
		if !existed && alt[table] != "" {
			actx, acancel := context.WithTimeout(ctx, CheckTimeout)
			_, aerr := ddb.DescribeTable(actx, &dynamodb.DescribeTableInput{TableName: aws.String(alt[table])})
			acancel()
			if aerr == nil {
				// The table name depends on the number of sources: a config
				// that gained or lost a source would start over from
				// init_position and skip what the old table's checkpoints
				// still had to read.
				v.add(fail(names[i], ClassInvalidConfig,
					fmt.Errorf("lease table %s does not exist, but the checkpoints of this consumer are in %s", table, alt[table]),
					"a config with one source uses consumer.application as the lease table, with several application-<source>: keep the sources as they were, or move the items of "+alt[table]+" to "+table+" before running"))
				cancel()
				continue
			}
		}
		lt, err := leases.New(leases.Config{Client: ddb, Table: table, WorkerID: cfg.Consumer.WorkerID, LeaseDuration: cfg.Consumer.LeaseDuration, Logger: quiet})
		if err == nil {
			err = lt.EnsureTable(cctx)
		}
		cancel()
		if err != nil {
			class := classify(err)
			if !existed && class == ClassOther {
				class = ClassAccessDenied
			}
			v.add(fail(names[i], class, err, hintFor(class, "dynamodb", hint)))
			continue
		}
		if existed {
			if c, ok := v.tableOfStream(ctx, lt, table, names[i]); !ok {
				v.add(c)
				continue
			}
			v.add(pass(names[i], "exists, ACTIVE, key ShardID"))
		} else {
			v.add(pass(names[i], "did not exist; created (on demand, key ShardID), as run would"))
		}
	}
}

// tableOfStream checks, for an existing lease table, that its application
// row (if the application started) names the stream of its source as the
// stream check found it: a stream deleted and recreated under the same name
// has new shards with new sequence numbers, and the old checkpoints would be
// applied to them. It also warns when init_position differs from the stored
// start position, which is the one that applies.
func (v *validator) tableOfStream(ctx context.Context, lt *leases.Table, table, name string) (Check, bool) {
	for _, src := range v.cfg.Sources {
		if app.LeaseTable(v.cfg, src.Name) != table {
			continue
		}
		found, ok := v.streams[src.Name]
		if !ok {
			continue // the stream check failed: nothing to compare with
		}
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		stored, started, err := lt.CheckStream(cctx, found.arn, found.created)
		cancel()
		if errors.Is(err, leases.ErrOtherStream) {
			return fail(name, ClassInvalidConfig, err,
				"the stream was deleted and created again under the same name, so the table's checkpoints belong to the old stream: delete the items of table "+table+" (or set another consumer.application) to start the new stream from init_position"), false
		}
		if err != nil {
			class := classify(err)
			return fail(name, class, err, hintFor(class, "dynamodb", "grant the consumer's credentials dynamodb:GetItem on table "+table)), false
		}
		want := src.Kinesis.InitPosition
		configured := leases.Position{Type: want.ShardIteratorType(), Timestamp: want.Timestamp}
		if started && !stored.Start.Equal(configured) {
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("sources[%d].kinesis.init_position: %s, but application %s first started on %s with %s, which applies: init_position takes effect only at an application's first start (use a new consumer.application to start over)",
				found.index, want, table, stored.FirstStart.UTC().Format(time.RFC3339), stored.Start))
		}
	}
	return Check{}, true
}

// checkAWSConfig is the worker's configuration (app.AWS.Config) for checks:
// the same credentials (the role assumed the same way, with the same session
// name), but calls that give up quickly: at most 3 attempts, backoff at most
// 1s, connect timeout 3s. base is the worker's own credentials (the ones that
// assume the role).
func (v *validator) checkAWSConfig(ctx context.Context, region string, role *config.RoleARN, externalID string) (cfg aws.Config, base aws.CredentialsProvider, err error) {
	cfg, client, err := v.aws.Shared(ctx, region)
	if err != nil {
		return aws.Config{}, nil, err
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = time.Second
		})
	}
	// Derived from the loaded client, which holds AWS_CA_BUNDLE's roots.
	cfg.HTTPClient = client.WithDialerOptions(func(d *net.Dialer) { d.Timeout = 3 * time.Second }).WithTimeout(CheckTimeout)
	base = cfg.Credentials
	if role == nil {
		return cfg, base, nil
	}
	prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role.String(), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = v.session
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	})
	cfg.Credentials = aws.NewCredentialsCache(prov)
	return cfg, base, nil
}

// otherLeaseTable is the name LeaseTable gives a source's table when the
// config has the other kind of source list (one source versus several).
func otherLeaseTable(cfg *config.Config, source string) string {
	if !cfg.Consumer.TablePerSource {
		return cfg.Consumer.Application + "-" + source
	}
	return cfg.Consumer.Application
}

func roleText(r *config.RoleARN) string {
	if r == nil {
		return ""
	}
	return " (role " + r.String() + ")"
}

// classify sorts an error from an AWS call into a Class.
func classify(err error) Class {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), strings.ToLower(ae.ErrorMessage())
		switch code {
		case "ResourceNotFoundException", "NotFoundException", "NoSuchEntity", "StreamNotFound":
			return ClassNotFound
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnauthorizedAccess",
			"AuthorizationError", "KMSAccessDeniedException", "RegionDisabledException":
			return ClassAccessDenied
		case "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded",
			"TooManyRequestsException", "ProvisionedThroughputExceededException", "LimitExceededException",
			"RequestThrottled", "RequestThrottledException", "SlowDown", "KMSThrottlingException":
			return ClassThrottled
		case "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
			"SignatureDoesNotMatch", "IncompleteSignature", "InvalidSignatureException",
			"MissingAuthenticationToken", "MissingAuthenticationTokenException", "InvalidAccessKeyId":
			return ClassCredentials
		case "ValidationError", "ValidationException", "InvalidArgumentException", "InvalidParameterValue",
			"InvalidParameterException", "MalformedInput":
			if strings.Contains(msg, "arn") {
				return ClassInvalidARN
			}
		}
		if c, ok := statusClass(err); ok {
			return c
		}
		return ClassOther
	}
	if errors.Is(err, fs.ErrPermission) {
		return ClassAccessDenied
	}
	// An answer the SDK could not read as the service's error (a proxy's, or
	// an emulator's XML refusal to a JSON protocol) still has its status.
	if c, ok := statusClass(err); ok {
		return c
	}
	var (
		se  *smithyhttp.RequestSendError
		ne  net.Error
		dns *net.DNSError
		rt  *awshttp.ResponseTimeoutError
	)
	if errors.As(err, &se) || errors.As(err, &ne) || errors.As(err, &dns) || errors.As(err, &rt) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) {
		return ClassUnreachable
	}
	return ClassOther
}

// statusClass sorts an error by the HTTP status of the answer it carries:
// 403 is access_denied, 5xx unavailable.
func statusClass(err error) (Class, bool) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == 403:
			return ClassAccessDenied, true
		case code >= 500:
			return ClassUnavailable, true
		}
	}
	return "", false
}

// hintFor is what to do about a failure of class against service; denied is
// the hint for access_denied, which depends on the check.
func hintFor(class Class, service, denied string) string {
	env := "AWS_ENDPOINT_URL_" + strings.ToUpper(service)
	switch class {
	case ClassAccessDenied:
		return denied
	case ClassUnavailable:
		return fmt.Sprintf("the %s endpoint answered with a server error: an outage on its side; run waits for it (kinesis-ingest run --require-healthy refuses to start instead)", service)
	case ClassUnreachable:
		return fmt.Sprintf("the %s endpoint did not answer: check it (%s or AWS_ENDPOINT_URL if set, else the region's), the network, proxies and firewalls", service, env)
	case ClassThrottled:
		return fmt.Sprintf("AWS is throttling %s calls of this account; try again shortly, and raise the limit if it persists", service)
	case ClassCredentials:
		return "the worker's AWS credentials were rejected: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_PROFILE, and the region"
	case ClassInvalidARN:
		return "fix the ARN in the config"
	case ClassNotFound:
		return "check the names, account and region in the config"
	}
	return "see the error; run kinesis-ingest validate again once it is fixed"
}

// sinkChecks runs the commit-time checks of every sink of cfg, each
// bounded by CheckTimeout.
func sinkChecks(ctx context.Context, cfg *config.Config) []Check {
	var out []Check
	for _, p := range sinkreg.Probes(cfg) {
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		detail, err := p.Run(cctx)
		cancel()
		if err == nil {
			out = append(out, pass(p.Name, detail))
			continue
		}
		class, hint := p.Explain(err)
		out = append(out, fail(p.Name, Class(class), err, hint))
	}
	return out
}
