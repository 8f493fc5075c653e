package forwarder

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
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
		f, reg := startForwarder(t, cfg, addrs(servers))
		call := func(i int) {
			t.Helper()
			if err := f.Call(context.Background(), "Test.Echo", &echoArgs{N: i}, nil, true); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 25 {
			call(i)
		}
		byAddr(servers, f.Server()).stop()
		for i := 25; i < 50; i++ {
			call(i) // the first of these fails over
		}
		// Keep calling until a periodic rebalance has moved the session,
		// so calls ran across a move and the drain path ran too.
		i := 50
		testutil.Eventually(t, 5*time.Second, "a periodic rebalance", func() error {
			call(i)
			i++
			if r := metricValue(t, reg, "cairn_forwarder_rebalances_total"); r < 1 {
				return fmt.Errorf("%v rebalances after %d calls", r, i)
			}
			return nil
		})
		if metricValue(t, reg, "cairn_forwarder_failovers_total") < 1 {
			t.Fatal("the stopped server caused no failover")
		}
	})
	testutil.Eventually(t, 5*time.Second, "goroutines back to the count before the test", func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}
