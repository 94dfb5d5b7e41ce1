package leases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// applicationKey is the ShardID of the table's metadata row. Kinesis shard IDs
// are "shardId-" and digits, so it can never name a shard; the KCL never reads
// it (it reads rows by the shard IDs Kinesis lists), and scans skip it.
const applicationKey = "#application"

// Metadata columns.
const (
	colStartType     = "StartPosition"  // LATEST, TRIM_HORIZON or AT_TIMESTAMP, as first configured
	colStartTime     = "StartTimestamp" // the instant of LATEST, the timestamp of AT_TIMESTAMP
	colStreamARN     = "StreamARN"
	colStreamCreated = "StreamCreated" // the stream's creation time, timeFormat
	colFirstStart    = "FirstStart"    // when the row was written, timeFormat
	colFirstWorker   = "FirstWorker"
)

// Start position types, as Kinesis names the shard iterator types.
const (
	Latest      = "LATEST"
	TrimHorizon = "TRIM_HORIZON"
	AtTimestamp = "AT_TIMESTAMP"
)

// Position is where reading starts: an application (init_position, stored
// at its first start), a rewound shard (Rewind), a shard without a
// checkpoint (StartOf). It is the one start-position type of the consumers;
// internal/service/config's parsed init_position converts into it where the worker
// is wired.
type Position struct {
	Type      string    // Latest, TrimHorizon or AtTimestamp
	Timestamp time.Time // AtTimestamp: the timestamp; Latest, once stored: the instant of the first start
}

// Equal reports whether p and q are the same configured position (the
// instant of a stored Latest does not count).
func (p Position) Equal(q Position) bool {
	if p.Type != q.Type {
		return false
	}
	return p.Type != AtTimestamp || p.Timestamp.Equal(q.Timestamp)
}

func (p Position) String() string {
	switch p.Type {
	case AtTimestamp:
		return fmt.Sprintf("%s %s", p.Type, fmtTime(p.Timestamp))
	case Latest:
		if !p.Timestamp.IsZero() {
			return fmt.Sprintf("%s (first start %s)", p.Type, fmtTime(p.Timestamp))
		}
	}
	return p.Type
}

// Application is the metadata row of a lease table: what the application's
// first start decided, which every later start and every worker reads.
type Application struct {
	// Start is the init_position of the first start; for Latest, its
	// Timestamp is the instant of that start.
	Start Position
	// StreamARN and StreamCreated identify the stream the table's rows
	// belong to: a stream deleted and created again under the same name has
	// the same ARN but another creation time.
	StreamARN     string
	StreamCreated time.Time
	// FirstStart and FirstWorker say when and by whom the row was written.
	FirstStart  time.Time
	FirstWorker string
}

// ErrOtherStream is returned, wrapped, by Register when the lease table
// belongs to another stream than the one the worker reads (a stream deleted
// and recreated under the same name, or a table shared by mistake): its
// checkpoints are sequence numbers of that other stream.
var ErrOtherStream = errors.New("lease table belongs to another stream")

// Register returns the application's metadata row, writing it first if the
// table has none (a conditional put, so that of several workers starting
// together exactly one writes it and all read the same). want is this
// start's: its Start (for Latest the Timestamp is filled in with now), the
// stream's ARN and creation time. If the stored row names another stream (ARN
// or creation time) it returns ErrOtherStream. created reports whether this
// call wrote the row. A Start that differs from the stored one is not an
// error: the stored one applies, and the caller warns.
func (t *Table) Register(ctx context.Context, want Application) (app Application, created bool, err error) {
	// Stored values come back without a monotonic reading and in UTC: the
	// returned Application is the same whether this call wrote it or read it.
	now := t.now().Round(0).UTC()
	if want.Start.Type == Latest && want.Start.Timestamp.IsZero() {
		want.Start.Timestamp = now
	}
	want.Start.Timestamp = want.Start.Timestamp.Round(0).UTC()
	want.StreamCreated = want.StreamCreated.Round(0).UTC()
	want.FirstStart, want.FirstWorker = now, t.me
	item := map[string]types.AttributeValue{
		colShardID:     s(applicationKey),
		colStartType:   s(want.Start.Type),
		colStreamARN:   s(want.StreamARN),
		colFirstStart:  s(fmtTime(want.FirstStart)),
		colFirstWorker: s(t.me),
	}
	if !want.Start.Timestamp.IsZero() {
		item[colStartTime] = s(fmtTime(want.Start.Timestamp))
	}
	if !want.StreamCreated.IsZero() {
		item[colStreamCreated] = s(fmtTime(want.StreamCreated))
	}
	_, err = t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(t.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#sid)"),
		ExpressionAttributeNames: map[string]string{"#sid": colShardID},
	})
	if err == nil {
		t.mu.Lock()
		t.app = &want
		t.mu.Unlock()
		t.log.Info("application registered: first start", "start_position", want.Start.String(), "stream_arn", want.StreamARN, "stream_created", want.StreamCreated)
		return want, true, nil
	}
	if _, ok := isConditionFailed(err); !ok {
		return Application{}, false, fmt.Errorf("leases: write the application row of lease table %q: %w (check the DynamoDB endpoint and that the credentials allow dynamodb:PutItem on it)", t.table, err)
	}
	app, ok, err := t.Application(ctx)
	if err != nil {
		return Application{}, false, err
	}
	if !ok {
		return Application{}, false, fmt.Errorf("leases: the application row of lease table %q exists for a conditional put but not for a read; retry", t.table)
	}
	if err := app.sameStream(t.table, want); err != nil {
		return app, false, err
	}
	return app, false, nil
}

// sameStream checks that a stored row belongs to the stream of want.
func (a Application) sameStream(table string, want Application) error {
	if a.StreamARN != "" && want.StreamARN != "" && a.StreamARN != want.StreamARN {
		return fmt.Errorf("leases: lease table %q holds the checkpoints of stream %s, not of %s: %w; use another consumer.application for this stream", table, a.StreamARN, want.StreamARN, ErrOtherStream)
	}
	if !a.StreamCreated.IsZero() && !want.StreamCreated.IsZero() && !a.StreamCreated.Equal(want.StreamCreated) {
		return fmt.Errorf("leases: lease table %q holds the checkpoints of stream %s created at %s, but the stream now was created at %s (deleted and recreated): %w; its checkpoints are sequence numbers of the old stream: delete the table's items (or use another consumer.application) to start the new stream from init_position",
			table, a.StreamARN, fmtTime(a.StreamCreated), fmtTime(want.StreamCreated), ErrOtherStream)
	}
	return nil
}

// CheckStream reads the metadata row, if any, and returns ErrOtherStream
// (wrapped) if it names another stream than arn created at created. It writes
// nothing (validate uses it).
func (t *Table) CheckStream(ctx context.Context, arn string, created time.Time) (Application, bool, error) {
	app, ok, err := t.Application(ctx)
	if err != nil || !ok {
		return app, ok, err
	}
	return app, true, app.sameStream(t.table, Application{StreamARN: arn, StreamCreated: created})
}

// Application reads the metadata row (consistent read); ok is false if the
// table has none yet (the application never started).
func (t *Table) Application(ctx context.Context) (app Application, ok bool, err error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(t.table),
		Key:            key(applicationKey),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Application{}, false, fmt.Errorf("leases: read the application row of lease table %q: %w (DynamoDB unreachable or throttled)", t.table, err)
	}
	if out.Item == nil {
		return Application{}, false, nil
	}
	it := out.Item
	app = Application{
		Start:       Position{Type: str(it, colStartType)},
		StreamARN:   str(it, colStreamARN),
		FirstWorker: str(it, colFirstWorker),
	}
	for col, dst := range map[string]*time.Time{colStartTime: &app.Start.Timestamp, colStreamCreated: &app.StreamCreated, colFirstStart: &app.FirstStart} {
		if *dst, err = parseTime(str(it, col)); err != nil {
			return Application{}, false, fmt.Errorf("leases: the application row of lease table %q has a malformed %s: %w (fix or delete the row)", t.table, col, err)
		}
	}
	switch app.Start.Type {
	case Latest, TrimHorizon:
	case AtTimestamp:
		if app.Start.Timestamp.IsZero() {
			return Application{}, false, fmt.Errorf("leases: the application row of lease table %q has %s %s without a %s (fix or delete the row)", t.table, colStartType, AtTimestamp, colStartTime)
		}
	default:
		return Application{}, false, fmt.Errorf("leases: the application row of lease table %q has an unknown %s %q (fix or delete the row)", t.table, colStartType, app.Start.Type)
	}
	t.mu.Lock()
	t.app = &app
	t.mu.Unlock()
	return app, true, nil
}

// StartOf is where a shard without a checkpoint starts, for an application
// registered with Register: a child shard (one with a parent) at TRIM_HORIZON,
// since its parents were read to their end (or lost to retention) before it
// was leased; any other shard at the stored start: TRIM_HORIZON, or
// AT_TIMESTAMP of the stored timestamp, which for Latest is the instant of the
// application's first start. So nothing put after the first start is skipped,
// whichever worker leases the shard and however often it moves. ok is false
// before Register.
func (t *Table) StartOf(shardID string) (p Position, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app == nil {
		return Position{}, false
	}
	if l := t.running[shardID]; l != nil && l.status.ParentShardId != "" {
		return Position{Type: TrimHorizon}, true
	}
	if t.adjacent[shardID] != "" {
		return Position{Type: TrimHorizon}, true
	}
	if t.app.Start.Type == TrimHorizon {
		return Position{Type: TrimHorizon}, true
	}
	return Position{Type: AtTimestamp, Timestamp: t.app.Start.Timestamp}, true
}
