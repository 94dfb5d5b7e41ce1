package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestInitPositionForms: on one stream, records A are put, then (after a real
// pause) records B; T is an instant between them. A worker per form of T
// (each with its own lease table and output) must land exactly B and what
// comes later; trim_horizon lands everything; latest lands only records C,
// put after it started reading.
func TestInitPositionForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	dataA, keysA, _ := orders(0, 100, false)
	e.put(dataA, keysA)
	afterA := time.Now()
	// T is a whole second (the int form has no fraction) 1 to 2 s after A;
	// B goes in 0.6 s after T. kinesis-mock's arrival times have millisecond
	// precision, far finer than these margins.
	T := afterA.Truncate(time.Second).Add(2 * time.Second)
	time.Sleep(time.Until(T.Add(600 * time.Millisecond)))
	dataB, keysB, _ := orders(100, 100, false)
	e.put(dataB, keysB)

	// The emulator's arrival times really are on both sides of T - 0.5 s and
	// T + 0.5 s, the extreme forms below.
	lastA, firstB := e.arrivalSplit(100)
	if !lastA.Before(T.Add(-500*time.Millisecond)) || firstB.Before(T.Add(500*time.Millisecond)) {
		t.Fatalf("arrival times: last of A %s, first of B %s; want them around T = %s", lastA, firstB, T)
	}
	t.Logf("T = %s; last A arrived %s, first B %s", T.Format(time.RFC3339Nano), lastA.Format(time.RFC3339Nano), firstB.Format(time.RFC3339Nano))

	ist := time.FixedZone("", 5*3600+30*60)
	forms := []struct{ name, value string }{
		{"yaml_timestamp", T.Add(250 * time.Millisecond).UTC().Format("2006-01-02T15:04:05.999999Z07:00")}, // unquoted: a YAML timestamp
		{"int", fmt.Sprint(T.Unix())},
		{"float", fmt.Sprintf("%d.123456", T.Unix())},
		{"iso_offset", `"` + T.Add(500*time.Millisecond).In(ist).Format("2006-01-02T15:04:05.000000-07:00") + `"`},
		{"iso_space_no_offset", `"` + T.Add(-400*time.Millisecond).UTC().Format("2006-01-02 15:04:05.0") + `"`},
		{"iso_z_millis", `"` + T.Add(-500*time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z") + `"`},
		{"trim_horizon", "TRIM_Horizon"},
		{"latest", "latest"},
	}
	workers := map[string]*worker{}
	dirs := map[string]string{}
	for _, f := range forms {
		t.Logf("init_position %-20s %s", f.name+":", f.value)
		dirs[f.name] = filepath.Join(e.dir, f.name)
		cfg := e.writeConfig(testConfig{InitPosition: f.value, Table: "initpos-" + strings.ReplaceAll(f.name, "_", "-"), Dir: dirs[f.name]})
		workers[f.name] = e.start(cfg, f.name)
	}
	rows := func(form string) []int64 { return idsIn(t, filepath.Join(dirs[form], "rows")) }

	// latest reads what arrives after its shard iterators were taken: wait
	// until it holds both shards (the KCL takes the iterator before it
	// reports the lease taken), then put C.
	waitFor(t, 60*time.Second, "the latest worker to read both shards", func() bool {
		b, _ := os.ReadFile(workers["latest"].log)
		return strings.Count(string(b), "shard lease taken") >= 2
	})
	dataC, keysC, _ := orders(200, 50, false)
	e.put(dataC, keysC)

	want := map[string][]int64{"trim_horizon": idRange(0, 250), "latest": idRange(200, 250)}
	for _, f := range forms {
		if want[f.name] == nil {
			want[f.name] = idRange(100, 250)
		}
	}
	// Each shard is read in order, so once the last wanted records are in,
	// any unwanted earlier one would be too.
	for _, f := range forms {
		waitFor(t, 60*time.Second, f.name+" to land ids "+span(want[f.name]), func() bool {
			got := rows(f.name)
			return len(got) >= len(want[f.name]) && got[len(got)-1] >= want[f.name][len(want[f.name])-1] && containsAll(got, want[f.name])
		})
	}
	for _, f := range forms {
		if got := rows(f.name); !slices.Equal(got, want[f.name]) {
			t.Errorf("init_position %s (%s): rows %s, want exactly ids %s", f.value, f.name, span(got), span(want[f.name]))
		}
	}
}

// arrivalSplit reads the whole stream and returns the latest arrival time
// among ids below split and the earliest among the others.
func (e *env) arrivalSplit(split int64) (lastBelow, firstFrom time.Time) {
	e.t.Helper()
	ctx := e.t.Context()
	shards, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range shards.Shards {
		it, err := e.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(e.stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			e.t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := e.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				e.t.Fatal(err)
			}
			for _, r := range out.Records {
				var id int64
				fmt.Sscanf(string(r.Data), `{"id":%d,`, &id)
				at := aws.ToTime(r.ApproximateArrivalTimestamp)
				if id < split && at.After(lastBelow) {
					lastBelow = at
				}
				if id >= split && (firstFrom.IsZero() || at.Before(firstFrom)) {
					firstFrom = at
				}
			}
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return lastBelow, firstFrom
}

func containsAll(got, want []int64) bool {
	for _, id := range want {
		if _, ok := slices.BinarySearch(got, id); !ok {
			return false
		}
	}
	return true
}

// span describes sorted ids compactly: "[100..249] (150 ids)" when contiguous.
func span(ids []int64) string {
	if len(ids) == 0 {
		return "none"
	}
	contiguous := true
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			contiguous = false
		}
	}
	if contiguous {
		return fmt.Sprintf("[%d..%d] (%d ids)", ids[0], ids[len(ids)-1], len(ids))
	}
	return fmt.Sprintf("%v (%d ids)", ids, len(ids))
}
