package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestReservedPortsAreExclusiveAndBelowTheEphemeralRange(t *testing.T) {
	a, err := Reserve(20)
	if err != nil {
		t.Fatal(err)
	}
	_, high := rangeBelowEphemeral()
	seen := map[int]bool{}
	for _, p := range a.Ports {
		if p >= high && high == 32768 {
			t.Errorf("port %d is in the ephemeral range", p)
		}
		seen[p] = true
		// Free to bind for the server that asked.
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("reserved port %d cannot be bound: %v", p, err)
		}
		l.Close()
	}
	// While held, another reservation never gets them.
	for range 20 {
		b, err := Reserve(20)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Ports {
			if seen[p] {
				t.Fatalf("port %d reserved twice", p)
			}
		}
		b.Release()
	}
	a.Release()
	a.Release()
}
