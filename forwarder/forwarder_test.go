package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

func TestOneConnectionCarriesManyCalls(t *testing.T) {
	servers := startServers(t, 3)
	f, reg := startForwarder(t, testConfig(), addrs(servers))

	const n = 1000
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out echoArgs
			if err := f.Call(context.Background(), "Test.Barrier", &echoArgs{N: i}, &out, true); err != nil {
				errs <- err
			}
		}()
	}
	total := func(m string) int64 {
		var sum int64
		for _, s := range servers {
			sum += s.count(m)
		}
		return sum
	}
	// All 1000 calls are inside handlers at once...
	testutil.Eventually(t, 10*time.Second, "1000 calls in flight", func() error {
		if got := total("Test.Barrier"); got != n {
			return fmt.Errorf("%d calls in handlers", got)
		}
		return nil
	})
	// ...over exactly one TCP connection.
	if g := metricValue(t, reg, "cairn_forwarder_connections"); g != 1 {
		t.Errorf("cairn_forwarder_connections = %v with %d calls in flight, want 1", g, n)
	}
	if c := establishedTo(t, servers); c != 1 {
		t.Errorf("%d established client connections to servers in /proc, want 1", c)
	}
	cur := byAddr(servers, f.Server())
	if cur == nil || cur.count("Test.Barrier") != n {
		t.Errorf("calls spread over servers; want all on the connected one")
	}
	for _, s := range servers {
		close(s.release)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := metricValue(t, reg, "cairn_forwarder_requests_total"); got != n {
		t.Errorf("cairn_forwarder_requests_total = %v, want %d", got, n)
	}
	if c := establishedTo(t, servers); c != 1 {
		t.Errorf("%d established connections after the burst, want 1", c)
	}
}

func TestFailoverWithinTwoSeconds(t *testing.T) {
	servers, f, reg := connectedForwarder(t, 3)
	first := f.Server()
	byAddr(servers, first).stop()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out echoArgs
	if err := f.Call(ctx, "Test.Echo", &echoArgs{Msg: "after"}, &out, true); err != nil {
		t.Fatalf("no failover within 2s: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("failover took %v", d)
	}
	if now := f.Server(); now == first || now == "" {
		t.Fatalf("still on %q after its server closed", now)
	}
	// A write (non-idempotent) also goes through: the dead session is
	// detected before sending, so it is safe to send on the new one.
	if err := f.Call(ctx, "Test.Write", &echoArgs{}, nil, false); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "gauge back to 1", func() error {
		if g := metricValue(t, reg, "cairn_forwarder_connections"); g != 1 {
			return fmt.Errorf("cairn_forwarder_connections = %v", g)
		}
		return nil
	})
	if c := establishedTo(t, servers); c != 1 {
		t.Errorf("%d established connections after failover, want 1", c)
	}
	// Handler errors are returned as they are, not retried.
	before := byAddr(servers, f.Server()).count("Test.Fail")
	if err := f.Call(ctx, "Test.Fail", nil, nil, true); !errors.Is(err, structs.ErrNotLeader) {
		t.Fatalf("got %v, want ErrNotLeader", err)
	}
	if got := byAddr(servers, f.Server()).count("Test.Fail") - before; got != 1 {
		t.Fatalf("handler error retried: %d calls", got)
	}
}

func TestInFlightWriteNotResent(t *testing.T) {
	servers, f, _ := connectedForwarder(t, 3)
	victim := byAddr(servers, f.Server())
	victim.block.Store(true)

	writeErr := make(chan error, 1)
	readErr := make(chan error, 1)
	var readOut echoArgs
	go func() {
		writeErr <- f.Call(context.Background(), "Test.Write", &echoArgs{Msg: "w"}, nil, false)
	}()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		readErr <- f.Call(ctx, "Test.Read", &echoArgs{Msg: "r"}, &readOut, true)
	}()
	testutil.Eventually(t, 5*time.Second, "write and read in flight", func() error {
		if w, r := victim.count("Test.Write"), victim.count("Test.Read"); w != 1 || r != 1 {
			return fmt.Errorf("%d writes, %d reads in the victim's handlers", w, r)
		}
		return nil
	})
	victim.stop()

	select {
	case err := <-writeErr:
		if !errors.Is(err, ErrWriteOutcomeUnknown) {
			t.Fatalf("write: got %v, want ErrWriteOutcomeUnknown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write call did not return after its server died")
	}
	select {
	case err := <-readErr:
		if err != nil {
			t.Fatalf("read was not retried elsewhere: %v", err)
		}
		if readOut.Msg == victim.addr || readOut.Msg == "" {
			t.Fatalf("read answered by %q", readOut.Msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read call did not return")
	}
	// Close the forwarder (it sends nothing more), then every server: Close
	// returns once its connections and handlers have finished, so a resend
	// that reached any server has been counted by now.
	f.Close()
	for _, s := range servers {
		s.stop()
	}
	var writes int64
	for _, s := range servers {
		writes += s.count("Test.Write")
	}
	if writes != 1 {
		t.Fatalf("write handled %d times, want exactly 1 (never resent)", writes)
	}
}

func TestRebalanceMovesAndDrains(t *testing.T) {
	servers := startServers(t, 3)
	cfg := testConfig()
	cfg.RebalanceInterval = 300 * time.Millisecond
	f, reg := startForwarder(t, cfg, addrs(servers))
	if err := f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, true); err != nil {
		t.Fatal(err)
	}
	first := f.Server()
	// A long call on the first session must survive the move.
	long := make(chan error, 1)
	var longOut echoArgs
	go func() { long <- f.Call(context.Background(), "Test.Barrier", &echoArgs{}, &longOut, true) }()
	testutil.Eventually(t, 5*time.Second, "long call in flight", func() error {
		if c := byAddr(servers, first).count("Test.Barrier"); c != 1 {
			return fmt.Errorf("%d barrier calls on %s", c, first)
		}
		return nil
	})

	testutil.Eventually(t, 5*time.Second, "rebalance to another server", func() error {
		if s := f.Server(); s == "" || s == first {
			return fmt.Errorf("on %q", s)
		}
		return nil
	})
	// The old session drains: still open while the long call runs.
	if g := metricValue(t, reg, "cairn_forwarder_connections"); g != 2 {
		t.Errorf("connections while draining = %v, want 2", g)
	}
	// New calls go to the new server.
	var out echoArgs
	if err := f.Call(context.Background(), "Test.Read", &echoArgs{}, &out, true); err != nil {
		t.Fatal(err)
	}
	if out.Msg == first {
		t.Errorf("new call went to the draining server")
	}
	close(byAddr(servers, first).release)
	if err := <-long; err != nil || longOut.Msg != first {
		t.Fatalf("long call across rebalance: %v (%+v)", err, longOut)
	}
	// Stop further moves, then the count settles at one.
	f.SetServers([]string{f.Server()})
	testutil.Eventually(t, 3*time.Second, "one connection after drain", func() error {
		g, c := metricValue(t, reg, "cairn_forwarder_connections"), establishedTo(t, servers)
		if g != 1 || c != 1 {
			return fmt.Errorf("gauge %v, %d established in /proc", g, c)
		}
		return nil
	})
	if metricValue(t, reg, "cairn_forwarder_rebalances_total") < 1 {
		t.Error("rebalances not counted")
	}
}

func TestServerRemovedFromList(t *testing.T) {
	servers, f, _ := connectedForwarder(t, 2)
	first := f.Server()
	var other string
	for _, a := range addrs(servers) {
		if a != first {
			other = a
		}
	}
	f.SetServers([]string{other})
	testutil.Eventually(t, 3*time.Second, "move off removed server", func() error {
		if s := f.Server(); s != other {
			return fmt.Errorf("on %q, want %q", s, other)
		}
		return nil
	})
}

// parkedIn is the condition "some goroutine is blocked in a select inside
// fn": how a test learns that a call is waiting before it changes what the
// call waits for.
func parkedIn(fn string) func() error {
	return func() error {
		buf := make([]byte, 1<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "[select") && strings.Contains(g, fn+"(") {
				return nil
			}
		}
		return fmt.Errorf("no goroutine parked in %s", fn)
	}
}

func TestNoServersFailsFast(t *testing.T) {
	// In a synctest bubble the no-servers wait is measured on the bubble's
	// exact clock. (No session may be opened in a bubble: yamux pools its
	// timers, and a bubble's timer used outside it is fatal.)
	synctest.Test(t, func(t *testing.T) {
		f, _ := startForwarder(t, testConfig(), nil)
		start := time.Now()
		err := f.Call(context.Background(), "Test.Echo", nil, nil, true)
		if !errors.Is(err, structs.ErrNoServers) {
			t.Fatalf("got %v, want ErrNoServers", err)
		}
		if d := time.Since(start); d != noServersWait || d > 1500*time.Millisecond {
			t.Fatalf("took %v to report no servers, want %v", d, noServersWait)
		}
	})
	// Servers arriving while a call waits are used.
	servers := startServers(t, 1)
	f, _ := startForwarder(t, testConfig(), nil)
	done := make(chan error, 1)
	go func() { done <- f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, false) }()
	testutil.Eventually(t, noServersWait/2, "the call to wait for a server", parkedIn("forwarder.(*Forwarder).acquire"))
	f.SetServers(addrs(servers))
	if err := <-done; err != nil {
		t.Fatalf("call waiting for first server: %v", err)
	}
}

func TestUnreachableServersHonourDeadline(t *testing.T) {
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	f, _ := startForwarder(t, testConfig(), []string{dead})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.Call(ctx, "Test.Echo", nil, nil, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func TestCloseFailsCalls(t *testing.T) {
	_, f, reg := connectedForwarder(t, 1)
	f.Close()
	if err := f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v after Close", err)
	}
	if g := metricValue(t, reg, "cairn_forwarder_connections"); g != 0 {
		t.Fatalf("connections after Close = %v", g)
	}
}

func BenchmarkForwarderCall(b *testing.B) {
	servers := startServers(b, 3)
	f, _ := startForwarder(b, testConfig(), addrs(servers))
	ctx := context.Background()
	in := &echoArgs{Msg: "ping", N: 1}
	var out echoArgs
	if err := f.Call(ctx, "Test.Echo", in, &out, true); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := f.Call(ctx, "Test.Echo", in, &out, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkForwarderParallel(b *testing.B) {
	servers := startServers(b, 3)
	f, _ := startForwarder(b, testConfig(), addrs(servers))
	if err := f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, true); err != nil {
		b.Fatal(err)
	}
	// 256 goroutines in flight regardless of GOMAXPROCS.
	b.SetParallelism(max(1, 256/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		in := &echoArgs{Msg: "ping", N: 1}
		var out echoArgs
		for pb.Next() {
			if err := f.Call(context.Background(), "Test.Echo", in, &out, true); err != nil {
				b.Error(fmt.Errorf("call: %w", err))
				return
			}
		}
	})
}

// TestLocalAddr: with Config.LocalAddr the session is dialled from it.
func TestLocalAddr(t *testing.T) {
	servers := startServers(t, 1)
	cfg := testConfig()
	cfg.LocalAddr = &net.TCPAddr{IP: net.ParseIP("127.0.0.77")}
	f, _ := startForwarder(t, cfg, addrs(servers))
	if err := f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, true); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	local := f.cur.sess.LocalAddr().(*net.TCPAddr)
	f.mu.Unlock()
	if !local.IP.Equal(net.ParseIP("127.0.0.77")) {
		t.Fatalf("session dialled from %v, want 127.0.0.77", local)
	}
}
