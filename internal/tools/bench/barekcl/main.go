// Command barekcl is the reference consumer of the end-to-end benchmark
// (internal/tools/bench/e2e): vmware-go-kcl-v2 in polling mode, with the library's
// own DynamoDB checkpointer, a record processor that only counts records and
// checkpoints each batch, and nothing else (no decoding, no sink). It is what
// a worker costs before it does anything with the records.
//
// It reads its AWS endpoints, region and credentials from the environment, as
// kinesis-ingest does (AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_REGION, AWS_ACCESS_KEY_ID, ...), and prints to stdout, one line per
// batch, "n TOTAL" (records counted so far); with -latency also one line per
// record, "a ARRIVAL_UNIX_NANO NOW_UNIX_NANO" (the record's
// ApproximateArrivalTimestamp and when ProcessRecords got it). It runs until
// SIGTERM or SIGINT, then shuts the worker down (releasing its leases).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/sirupsen/logrus"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	kcllog "github.com/vmware/vmware-go-kcl-v2/logger"
)

func main() {
	stream := flag.String("stream", "", "stream name")
	app := flag.String("app", "barekcl", "application name and lease table")
	workerID := flag.String("worker-id", "bare-1", "worker id")
	shardSync := flag.Duration("shard-sync-interval", time.Second, "shard sync (and lease taking) interval")
	leaseDuration := flag.Duration("lease-duration", 10*time.Second, "lease duration (failover time)")
	leaseRefresh := flag.Duration("lease-refresh", 2*time.Second, "lease refresh interval")
	idle := flag.Duration("idle-between-reads", 500*time.Millisecond, "wait after an empty GetRecords")
	maxRecords := flag.Int("max-records", 10000, "records per GetRecords")
	stealing := flag.Bool("lease-stealing", true, "lease stealing")
	latency := flag.Bool("latency", false, "print arrival and processing time of every record")
	flag.Parse()
	if *stream == "" {
		fmt.Fprintln(os.Stderr, "barekcl: -stream is required")
		os.Exit(2)
	}
	if err := run(*stream, *app, *workerID, *shardSync, *leaseDuration, *leaseRefresh, *idle, *maxRecords, *stealing, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "barekcl:", err)
		os.Exit(1)
	}
}

func run(stream, app, workerID string, shardSync, leaseDuration, leaseRefresh, idle time.Duration, maxRecords int, stealing, latency bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	dynamo := dynamodb.NewFromConfig(cfg)
	if err := createTable(ctx, dynamo, app); err != nil {
		return err
	}
	ms := func(d time.Duration) int { return int(d / time.Millisecond) }
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.WarnLevel)
	logrus.SetOutput(io.Discard) // the library's stray direct logrus calls
	kc := kclcfg.NewKinesisClientLibConfigWithCredentials(app, stream, cfg.Region, workerID, nil, nil).
		WithTableName(app).
		WithFailoverTimeMillis(ms(leaseDuration)).
		WithLeaseRefreshWaitTime(ms(leaseRefresh)).
		WithShardSyncIntervalMillis(ms(shardSync)).
		WithIdleTimeBetweenReadsInMillis(ms(idle)).
		WithMaxRecords(maxRecords).
		WithLeaseStealing(stealing).
		WithInitialPositionInStream(kclcfg.TRIM_HORIZON).
		WithLogger(kcllog.NewLogrusLogger(log))
	kc.LeaseStealingIntervalMillis = ms(shardSync)
	kc.LeaseSyncingTimeIntervalMillis = ms(shardSync)

	out := &output{w: bufio.NewWriterSize(os.Stdout, 64<<10), latency: latency}
	cp := checkpoint.NewDynamoCheckpoint(kc).WithDynamoDB(dynamo)
	w := worker.NewWorker(factory{out}, kc).WithKinesis(kinesis.NewFromConfig(cfg)).WithCheckpointer(cp)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { w.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * leaseDuration): // Shutdown has no timeout of its own
		fmt.Fprintln(os.Stderr, "barekcl: shutdown timed out")
	}
	return nil
}

// createTable creates the lease table on demand and waits until it is
// ACTIVE: the library would create it provisioned and not wait.
func createTable(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("ShardID"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("ShardID"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create lease table %s: %w", name, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err == nil && out.Table.TableStatus == ddbtypes.TableStatusActive {
			return nil
		}
	}
	return fmt.Errorf("lease table %s not ACTIVE after 30s", name)
}

// output prints the counts; shards call it concurrently.
type output struct {
	mu      sync.Mutex
	w       *bufio.Writer
	total   int
	latency bool
}

func (o *output) add(in *kcl.ProcessRecordsInput) {
	now := time.Now().UnixNano()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total += len(in.Records)
	if o.latency {
		for _, r := range in.Records {
			fmt.Fprintf(o.w, "a %d %d\n", aws.ToTime(r.ApproximateArrivalTimestamp).UnixNano(), now)
		}
	}
	o.w.WriteString("n " + strconv.Itoa(o.total) + "\n")
	o.w.Flush()
}

type factory struct{ out *output }

func (f factory) CreateProcessor() kcl.IRecordProcessor { return &processor{out: f.out} }

// processor counts a shard's records and checkpoints every batch.
type processor struct{ out *output }

func (p *processor) Initialize(*kcl.InitializationInput) {}

func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	p.out.add(in)
	if err := in.Checkpointer.Checkpoint(in.Records[len(in.Records)-1].SequenceNumber); err != nil {
		fmt.Fprintln(os.Stderr, "barekcl: checkpoint:", err)
	}
}

func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	if in.ShutdownReason == kcl.TERMINATE {
		_ = in.Checkpointer.Checkpoint(nil)
	}
}
