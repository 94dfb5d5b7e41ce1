package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleep(t *testing.T) {
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil once d elapsed", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// An hour: only the cancelled context can end this wait.
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestJitterStaysInHalfOpenRange(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, 100 * time.Millisecond, 10 * time.Second} {
		for range 200 {
			j := Jitter(d)
			if d <= 1 {
				if j != d {
					t.Fatalf("Jitter(%v) = %v, want %v", d, j, d)
				}
				continue
			}
			if j < d/2 || j >= d {
				t.Fatalf("Jitter(%v) = %v, want within [%v, %v)", d, j, d/2, d)
			}
		}
	}
}

func TestDo(t *testing.T) {
	errTransient := errors.New("transient")
	errBad := errors.New("bad")
	fast := Policy{Initial: time.Microsecond, Max: 4 * time.Microsecond}
	tests := []struct {
		name      string
		policy    Policy
		results   []error // what f returns, call by call; nil after the end
		retryable func(error) bool
		wantCalls int
		wantErr   error
	}{
		{name: "first call succeeds", policy: fast, results: nil, wantCalls: 1},
		{name: "retries until success", policy: fast, results: []error{errTransient, errTransient}, wantCalls: 3},
		{name: "attempts bound the calls", policy: Policy{Initial: time.Microsecond, Attempts: 2},
			results: []error{errTransient, errTransient, errTransient}, wantCalls: 2, wantErr: errTransient},
		{name: "a non-retryable error ends at once", policy: fast, results: []error{errTransient, errBad},
			retryable: func(err error) bool { return errors.Is(err, errTransient) }, wantCalls: 2, wantErr: errBad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, retries := 0, 0
			err := tc.policy.Do(t.Context(), Options{
				Retryable: tc.retryable,
				OnRetry: func(a Attempt) {
					retries++
					if a.N != retries || a.Err == nil {
						t.Errorf("OnRetry(%+v) on retry %d", a, retries)
					}
				},
			}, func(context.Context) error {
				calls++
				if calls <= len(tc.results) {
					return tc.results[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("f called %d times, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("Do = %v, want %v", err, tc.wantErr)
			}
			if retries != calls-1 && tc.wantErr == nil {
				t.Errorf("OnRetry called %d times for %d calls", retries, calls)
			}
		})
	}
}

func TestDoEndsWithItsContext(t *testing.T) {
	errDown := errors.New("down")
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	// An hour between attempts: only the cancel can end the wait.
	err := Policy{Initial: time.Hour}.Do(ctx, Options{OnRetry: func(Attempt) { cancel() }},
		func(context.Context) error { calls++; return errDown })
	if calls != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, errDown) {
		t.Errorf("Do after cancel = %v after %d calls, want context.Canceled and the last error after 1", err, calls)
	}
}

// An f that returns its context's error is the cancellation, said once.
func TestDoReturnsTheContextErrorOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Policy{}.Do(ctx, Options{}, func(ctx context.Context) error { return ctx.Err() })
	if err != context.Canceled {
		t.Errorf("Do = %q, want context.Canceled itself", err)
	}
}

func TestWaitsDoubleUpToTheCap(t *testing.T) {
	got := Policy{Initial: 100 * time.Millisecond, Max: time.Second}.Waits(6)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Waits = %v, want %v", got, want)
		}
	}
}

func BenchmarkDoFirstTry(b *testing.B) {
	p := Policy{Initial: time.Millisecond, Max: time.Second}
	ctx := context.Background()
	for b.Loop() {
		_ = p.Do(ctx, Options{}, func(context.Context) error { return nil })
	}
}
