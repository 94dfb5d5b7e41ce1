package jsonenc

import (
	"math/rand/v2"
	"testing"
	"time"
)

// AppendTime agrees with time.Format for the layout, over many instants.
func TestAppendTimeMatchesFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("A", 5*3600+1800), time.FixedZone("B", -11*3600)}
	for i := range 100000 {
		ts := time.Unix(r.Int64N(253402300799-(-62135596800))+(-62135596800), r.Int64N(1e9)).In(zones[i%len(zones)])
		if ts.UTC().Year() > 9999 {
			continue
		}
		got, err := AppendTime(nil, ts)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + ts.UTC().Format(TimeLayout) + `"`; string(got) != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", ts, got, want)
		}
	}
	for _, ts := range []time.Time{{}, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)} {
		got, err := AppendTime(nil, ts)
		if want := `"` + ts.UTC().Format(TimeLayout) + `"`; err != nil || string(got) != want {
			t.Errorf("AppendTime(%v) = %s, %v, want %s", ts, got, err, want)
		}
	}
	for _, ts := range []time.Time{time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-400000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, err := AppendTime(nil, ts); err == nil {
			t.Errorf("AppendTime(%v) = %s, want an error", ts, got)
		}
	}
	// Every day of the range: month lengths, leap years, century rules.
	for d := time.Date(0, 1, 1, 12, 0, 0, 0, time.UTC); d.Year() < 10000; d = d.AddDate(0, 0, 1) {
		got, _ := AppendTime(nil, d)
		if want := `"` + d.Format(TimeLayout) + `"`; string(got) != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", d, got, want)
		}
	}
}
