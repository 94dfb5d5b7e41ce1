package freelist

import (
	"runtime"
	"sync"
	"testing"
)

func TestListKeepsAtMostMax(t *testing.T) {
	tests := []struct {
		name      string
		max, puts int
		wantKept  int
	}{
		{"under the bound", 4, 2, 2},
		{"at the bound", 4, 4, 4},
		{"over the bound", 4, 9, 4},
		{"a bound below one keeps one", 0, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New[*[]byte](tt.max)
			kept := 0
			for range tt.puts {
				b := make([]byte, 0, 16)
				if l.Put(&b) {
					kept++
				}
			}
			if kept != tt.wantKept || l.Len() != tt.wantKept {
				t.Fatalf("kept %d (Len %d) of %d puts with max %d, want %d", kept, l.Len(), tt.puts, tt.max, tt.wantKept)
			}
			got := 0
			for {
				if _, ok := l.Get(); !ok {
					break
				}
				got++
			}
			if got != tt.wantKept {
				t.Fatalf("got %d values back, want %d", got, tt.wantKept)
			}
		})
	}
}

// The reason the List exists: a sync.Pool drops what it holds within two
// collections, a List keeps it.
func TestListSurvivesGarbageCollections(t *testing.T) {
	l := New[*[]byte](2)
	b := make([]byte, 0, 1<<20)
	l.Put(&b)
	for range 3 {
		runtime.GC()
	}
	got, ok := l.Get()
	if !ok || got != &b {
		t.Fatal("the kept buffer is gone after three collections")
	}
}

func TestListReturnsTheLastPut(t *testing.T) {
	var zero List[int] // keeps nothing, and must not panic
	if _, ok := zero.Get(); ok {
		t.Fatal("an empty List returned a value")
	}
	l := New[int](3)
	l.Put(1)
	l.Put(2)
	if v, _ := l.Get(); v != 2 {
		t.Fatalf("Get = %d, want 2 (the last put: the warmest buffer)", v)
	}
}

func TestListConcurrentUse(t *testing.T) {
	l := New[int](8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if v, ok := l.Get(); ok && v < 0 {
					t.Error("a negative value was never put")
				}
				l.Put(g*1000 + i)
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n > 8 {
		t.Fatalf("Len %d after concurrent use, over the bound 8", n)
	}
}
