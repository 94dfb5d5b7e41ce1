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
