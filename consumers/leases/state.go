package leases

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// colState is the handler's state stored with the checkpoint
// (consumers.StateHandler), as binary.
const colState = "State"

// staged is a state waiting for the checkpoint it belongs to.
type staged struct {
	seq   string
	state []byte
}

// StageState sets the state to store with the shard's next checkpoint at
// sequence number seq: CheckpointSequence writes both in one conditional
// update, so a checkpoint and its state are never apart. A checkpoint at
// another sequence number leaves the staged state alone.
func (t *Table) StageState(shardID, seq string, state []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.states == nil {
		t.states = map[string]staged{}
	}
	t.states[shardID] = staged{seq: seq, state: state}
}

// stagedState returns the state staged for the checkpoint cp of shardID.
func (t *Table) stagedState(shardID, cp string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.states[shardID]
	if !ok || st.seq != cp {
		return nil, false
	}
	return st.state, true
}

// ShardState reads (consistently) the state stored with the shard's
// checkpoint; nil if none.
func (t *Table) ShardState(ctx context.Context, shardID string) ([]byte, error) {
	r, err := t.get(ctx, shardID)
	if err != nil {
		return nil, fmt.Errorf("leases: read the state stored with the checkpoint of shard %q: %w", shardID, err)
	}
	return r.State, nil
}

func binaryAttr(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}
