package leases

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesis-ingest/kinesis-ingest/retry"
)

// EnsureTable creates the lease table if it does not exist: on-demand
// (PAY_PER_REQUEST, which dynalite 4 supports too), hash key ShardID (S). It
// waits until the table is ACTIVE, also when it already existed or another
// worker is creating it at the same time, and checks that an existing table
// has the expected key. The KCL's Init calls it with a timeout of two minutes.
func (t *Table) EnsureTable(ctx context.Context) error {
	desc, err := t.describe(ctx)
	if err != nil {
		return err
	}
	if desc == nil {
		_, err := t.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(t.table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(colShardID), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(colShardID), KeyType: types.KeyTypeHash}},
		})
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			t.log.Info("lease table is being created by another worker; waiting for it")
		case err != nil:
			return fmt.Errorf("leases: create lease table %q: %w (check the DynamoDB endpoint and that the credentials allow dynamodb:CreateTable, or create the table yourself with hash key %s of type S)", t.table, err, colShardID)
		default:
			t.log.Info("lease table created", "billing_mode", string(types.BillingModePayPerRequest))
		}
	}
	var status string
	err = activePolicy.Do(ctx, retry.Options{Retryable: func(err error) bool { return errors.Is(err, errNotActive) }},
		func(ctx context.Context) error {
			desc, err := t.describe(ctx)
			switch {
			case err != nil:
				return err
			case desc == nil:
				status = "absent"
				return errNotActive
			}
			if err := t.checkSchema(desc); err != nil {
				return err
			}
			if desc.TableStatus != types.TableStatusActive {
				status = string(desc.TableStatus)
				return errNotActive
			}
			return nil
		})
	if errors.Is(err, errNotActive) {
		return fmt.Errorf("leases: lease table %q is still %s: %w", t.table, status, context.Cause(ctx))
	}
	return err
}

// errNotActive is a lease table that exists, or is being created, but is
// not ACTIVE yet: EnsureTable asks again.
var errNotActive = errors.New("lease table not active")

// activePolicy paces EnsureTable's wait for the table to become ACTIVE.
var activePolicy = retry.Policy{Initial: 20 * time.Millisecond, Max: time.Second}

// describe returns the table description, or nil if the table does not exist.
func (t *Table) describe(ctx context.Context) (*types.TableDescription, error) {
	out, err := t.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.table)})
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leases: describe lease table %q: %w (check the DynamoDB endpoint, region and credentials)", t.table, err)
	}
	return out.Table, nil
}

func (t *Table) checkSchema(desc *types.TableDescription) error {
	ok := len(desc.KeySchema) == 1 &&
		aws.ToString(desc.KeySchema[0].AttributeName) == colShardID &&
		desc.KeySchema[0].KeyType == types.KeyTypeHash
	if ok {
		for _, d := range desc.AttributeDefinitions {
			if aws.ToString(d.AttributeName) == colShardID && d.AttributeType != types.ScalarAttributeTypeS {
				ok = false
			}
		}
	}
	if !ok {
		return fmt.Errorf("leases: table %q exists but its key is not %s (hash, S); it is not a lease table: use another table name", t.table, colShardID)
	}
	return nil
}

// Checkpoints returns every row of the lease table, by shard ID (one
// consistent Scan). It is meant for tests and operations.
func (t *Table) Checkpoints(ctx context.Context) (map[string]Lease, error) {
	rows, err := t.scan(ctx, true)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Lease, len(rows))
	for _, r := range rows {
		m[r.ShardID] = r
	}
	return m, nil
}

// row is one read item: the Lease plus the raw strings that conditions
// compare against.
type row struct {
	exists bool
	Lease
	rawTimeout   string
	rawClaimTime string
	// maxLeases is a worker row's cap (0: none).
	maxLeases int
	// The throughput balance's columns (balance.go); on a worker row,
	// balance is what it announced.
	throughput      float64
	hasThroughput   bool
	rawThroughputAt string
	renewals        int
	hasRenewals     bool
	balance         Balance
}

// get reads the row of shardID with a consistent read.
func (t *Table) get(ctx context.Context, shardID string) (row, error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(t.table),
		Key:            key(shardID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return row{}, fmt.Errorf("leases: read lease of shard %q from table %q: %w (DynamoDB unreachable or throttled; the KCL retries at its next tick)", shardID, t.table, err)
	}
	if out.Item == nil {
		return row{Lease: Lease{ShardID: shardID}}, nil
	}
	r, err := t.parse(out.Item)
	if err != nil {
		return row{}, err
	}
	return r, nil
}

// scan reads the whole table's lease rows. The pass's scan is eventually
// consistent, half the read units of a consistent one: what it decides alone
// is advisory (a refusal until the next pass, a probe answer, the plan), and
// every lease taken on it is a write under a condition on what was read.
func (t *Table) scan(ctx context.Context, consistent bool) ([]Lease, error) {
	rows, _, err := t.scanRows(ctx, consistent)
	if err != nil {
		return nil, err
	}
	leases := make([]Lease, len(rows))
	for i, r := range rows {
		leases[i] = r.Lease
	}
	return leases, nil
}

// scanRows reads the whole table: the shards' rows, and apart from them the
// worker rows (see workerKeyPrefix); the metadata row is skipped.
func (t *Table) scanRows(ctx context.Context, consistent bool) (rows, workers []row, err error) {
	p := dynamodb.NewScanPaginator(t.db, &dynamodb.ScanInput{
		TableName:      aws.String(t.table),
		ConsistentRead: aws.Bool(consistent),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("leases: scan lease table %q: %w (DynamoDB unreachable or throttled; retried at the next pass)", t.table, err)
		}
		for _, item := range out.Items {
			id := str(item, colShardID)
			if id == applicationKey {
				continue
			}
			r, err := t.parse(item)
			if err != nil {
				return nil, nil, err
			}
			if strings.HasPrefix(id, workerKeyPrefix) {
				if n, ok := item[colMaxLeases].(*types.AttributeValueMemberN); ok {
					r.maxLeases, _ = strconv.Atoi(n.Value)
				}
				r.balance = Balance(str(item, colBalance))
				workers = append(workers, r)
				continue
			}
			rows = append(rows, r)
		}
	}
	return rows, workers, nil
}

func (t *Table) parse(item map[string]types.AttributeValue) (row, error) {
	r := row{exists: true}
	r.ShardID = str(item, colShardID)
	r.Owner = str(item, colOwner)
	r.Checkpoint = str(item, colCheckpoint)
	r.ParentShardID = str(item, colParent)
	r.AdjacentParentShardID = str(item, colAdjacent)
	r.ClaimRequest = str(item, colClaim)
	r.StartAt = str(item, colStartAt)
	r.FailedOn = str(item, colFailedOn)
	if v := str(item, colFailedAt); v != "" {
		r.FailedAt, _ = parseTime(v) // a malformed one reads as long ago
	}
	if v := str(item, colIdleSince); v != "" {
		r.IdleSince, _ = parseTime(v) // a malformed one reads as not idle
	}
	r.rawTimeout = str(item, colLeaseTimeout)
	r.rawClaimTime = str(item, colClaimTime)
	r.State = binaryAttr(item, colState)
	r.throughput, r.hasThroughput = numAttr(item, colThroughput)
	r.rawThroughputAt = str(item, colThroughputAt)
	var rn float64
	rn, r.hasRenewals = numAttr(item, colRenewals)
	r.renewals = int(rn)
	var err error
	if r.LeaseTimeout, err = parseTime(r.rawTimeout); err != nil {
		return row{}, fmt.Errorf("leases: shard %q in table %q has a malformed %s %q: %w (fix or delete the row)", r.ShardID, t.table, colLeaseTimeout, r.rawTimeout, err)
	}
	if r.ClaimTime, err = parseTime(r.rawClaimTime); err != nil {
		return row{}, fmt.Errorf("leases: shard %q in table %q has a malformed %s %q: %w (fix or delete the row)", r.ShardID, t.table, colClaimTime, r.rawClaimTime, err)
	}
	t.sight(r.ShardID, r.Owner, r.rawTimeout)
	return r, nil
}

// sight records that this worker read the lease (owner, rawTimeout) of shard
// now, keeping the time it first read it so.
func (t *Table) sight(shard, owner, rawTimeout string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.seen[shard]; ok && s.owner == owner && s.rawTimeout == rawTimeout {
		return
	}
	t.seen[shard] = sighting{owner: owner, rawTimeout: rawTimeout, since: t.now()}
}

// live reports whether the lease on r still holds. A lease expires when this
// worker has seen its owner and LeaseTimeout unchanged for LeaseDuration,
// measured on this worker's own clock (monotonic): an owner renews by
// writing a new LeaseTimeout, so an unchanged one means no renewal for that
// long. The LeaseTimeout value, written on the owner's clock, is never
// compared with this worker's clock, so skew between machines cannot make a
// live lease look expired. The price: a lease first seen by a worker is live
// for a full LeaseDuration from that moment, even if its owner died long ago.
func (t *Table) live(r Lease) bool {
	if r.Owner == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.seen[r.ShardID]
	if !ok || s.owner != r.Owner {
		return true
	}
	return t.now().Sub(s.since) < t.leaseDur
}

// unchangedFor is how long this worker has seen r's owner and LeaseTimeout
// as they are now (0 if never).
func (t *Table) unchangedFor(r Lease) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.seen[r.ShardID]
	if !ok || s.owner != r.Owner {
		return 0
	}
	return t.now().Sub(s.since)
}

// str returns the string attribute name of item, or "" if it is absent or not
// a string.
func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func key(shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{colShardID: s(shardID)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
