package forwarder

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestNoGoroutinesLeft runs servers and a forwarder through connect,
// calls, failover and rebalance, shuts everything down and checks the
// goroutine count returns to where it started.
func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("work", func(t *testing.T) {
		servers := startServers(t, 3)
		cfg := testConfig()
		cfg.RebalanceInterval = 100 * time.Millisecond
		f, _ := startForwarder(t, cfg, addrs(servers))
		for i := range 50 {
			if err := f.Call(context.Background(), "Test.Echo", &echoArgs{N: i}, nil, true); err != nil {
				t.Fatal(err)
			}
			if i == 25 {
				byAddr(servers, f.Server()).stop()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
