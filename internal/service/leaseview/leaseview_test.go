package leaseview

import (
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/consumers/leases"
)

func TestPlanAndLiveOwners(t *testing.T) {
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	shards := []Shard{
		{ShardID: "s-0", Owner: "w1", LeaseExpires: at(3 * time.Second)},
		{ShardID: "s-1", Owner: "w2", LeaseExpires: at(-2 * time.Second)},  // expired, within the skew allowance
		{ShardID: "s-2", Owner: "w3", LeaseExpires: at(-30 * time.Second)}, // plainly dead
		{ShardID: "s-3"},
	}
	live := LiveOwners(shards, now.Add(-10*time.Second))
	if len(live) != 2 || live["w1"][0] != "s-0" || live["w2"][0] != "s-1" {
		t.Errorf("live owners %v, want w1 (s-0) and w2 (s-1)", live)
	}
	to := leases.Position{Type: leases.TrimHorizon}
	all, err := Plan(shards, to, "")
	if err != nil || len(all) != 4 {
		t.Errorf("plan of every shard: %d changes, %v", len(all), err)
	}
	one, err := Plan(shards, to, "s-3")
	if err != nil || len(one) != 1 || one[0].Shard.ShardID != "s-3" {
		t.Errorf("plan of --shard s-3: %+v, %v", one, err)
	}
	if _, err := Plan(shards, to, "s-9"); err == nil || !strings.Contains(err.Error(), "--shard s-9 is not a shard of the application; its shards are [s-0 s-1 s-2 s-3]") {
		t.Errorf("plan of an unknown shard: %v", err)
	}
}
