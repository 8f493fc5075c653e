package rpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// runtimeMem snapshots the cumulative bytes allocated by the process.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}

// sessionCostClients is the number of idle client sessions the
// per-session cost test holds open against one server.
const sessionCostClients = 500

// envSessionCostChild makes the test binary the client side of
// TestSessionCost: "addr n hold" dials n sessions, calls each once (and
// with hold=1 opens one long-lived stream on each, as a subscribing client
// agent does), prints "ready" and holds them until stdin closes.
const envSessionCostChild = "CAIRN_RPC_SESSION_COST_CHILD"

// holdMethod is the test server's long-lived stream: it reads frames until
// the stream closes, as a subscription stream's reader does.
const holdMethod = "Test.Hold"

// TestSessionCostChild is the client process of TestSessionCost; it skips
// unless started by it.
func TestSessionCostChild(t *testing.T) {
	spec := os.Getenv(envSessionCostChild)
	if spec == "" {
		t.Skip("client side of TestSessionCost")
	}
	var addr string
	var n, hold int
	if _, err := fmt.Sscanf(spec, "%s %d %d", &addr, &n, &hold); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sessions := make([]*Session, 0, n)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for range n {
		s, err := Dial(ctx, addr, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		var out echoArgs
		if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: "hi"}, &out); err != nil {
			t.Fatal(err)
		}
		if hold == 1 {
			st, err := s.OpenStream(ctx, holdMethod, &echoArgs{Msg: "hold"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&echoArgs{Msg: "subscribe"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// serverCost is what the server process holds: goroutines and Go heap
// plus stacks in use, after a GC.
func serverCost() (goroutines int, bytes uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse + ms.StackInuse
}

// TestSessionCost holds sessionCostClients sessions from a child process
// and measures what each costs the server: goroutines and memory. Budgets
// (the fleet target is 10,000 clients on 3 servers; README.md "Memory per
// connected client"):
//   - idle: each made one call, as a client agent's first lookup does.
//     Goroutines: the accept loop and yamux's receive and send loops (the
//     0.1 is the shared stream worker the calls left behind, amortised).
//     23 KiB measured.
//   - holding: each also holds one long-lived stream (what a subscription
//     stream costs in this package; cluster/stream adds its subscription
//     table, and a sender goroutine only while it has events to send).
//     One more goroutine: the worker serving the stream. 41 KiB measured.
func TestSessionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process holding hundreds of sessions")
	}
	for _, tc := range []struct {
		name          string
		hold          int
		maxGoroutines float64
		maxBytes      uint64
	}{
		{"idle", 0, 3.1, 32 << 10},
		{"holding a stream", 1, 4.1, 48 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perG, perB := sessionCost(t, tc.hold)
			if perG > tc.maxGoroutines || perB > tc.maxBytes {
				t.Fatalf("per session: %.2f goroutines (max %.1f), %d bytes (max %d)", perG, tc.maxGoroutines, perB, tc.maxBytes)
			}
			t.Logf("per session: %.2f goroutines, %.1f KiB heap+stack", perG, float64(perB)/1024)
		})
	}
}

// sessionCost starts a server and the child process and returns the
// goroutines and bytes each of its sessions costs (the least of a few
// looks: stream state is released asynchronously).
func sessionCost(t *testing.T, hold int) (perG float64, perB uint64) {
	ts := startServer(t, Limits{MaxConnsPerClient: NoLimit})
	ts.srv.HandleStream(holdMethod, func(ctx context.Context, dec Decoder, open func() (*Stream, error)) error {
		st, err := open()
		if err != nil {
			return err
		}
		for {
			var a echoArgs
			if err := st.Recv(&a); err != nil {
				return nil
			}
		}
	})
	g0, m0 := serverCost()

	cmd := exec.Command(os.Args[0], "-test.run=^TestSessionCostChild$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", envSessionCostChild, ts.addr, sessionCostClients, hold))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("client process ended before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("client process not ready within a minute")
	}
	testutil.Eventually(t, 10*time.Second, "all sessions open", func() error {
		if n := ts.srv.sessionCount(); n != sessionCostClients {
			return fmt.Errorf("%d sessions open, want %d", n, sessionCostClients)
		}
		return nil
	})
	perG, perB = math.MaxFloat64, math.MaxUint64
	for range 5 {
		g1, m1 := serverCost()
		perG = min(perG, float64(g1-g0)/sessionCostClients)
		if m1 > m0 {
			perB = min(perB, (m1-m0)/sessionCostClients)
		} else {
			perB = 0
		}
		time.Sleep(50 * time.Millisecond) // not synchronisation: spaced looks
	}
	if path := os.Getenv("CAIRN_RPC_HEAP_PROFILE"); path != "" { // where the bytes are
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	return perG, perB
}

// TestMethodCounter: each request to a registered method counts under its
// name; unknown methods add no label.
func TestMethodCounter(t *testing.T) {
	ts := startServer(t, Limits{})
	s := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		var out echoArgs
		if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: "hi"}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Call(ctx, "No.Such", &echoArgs{}, nil); err == nil {
		t.Fatal("unknown method answered")
	}
	if got := counterValue(t, ts.srv.metrics.methods.WithLabelValues("Test.Echo")); got != 3 {
		t.Fatalf("Test.Echo counted %v, want 3", got)
	}
	ch := make(chan prometheus.Metric, 16)
	ts.srv.metrics.methods.Collect(ch)
	close(ch)
	var methods []string
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		for _, l := range d.GetLabel() {
			methods = append(methods, l.GetValue())
		}
	}
	if len(methods) != 1 || methods[0] != "Test.Echo" {
		t.Fatalf("method labels %v, want only Test.Echo", methods)
	}
}

// chunkRecorder records the size of every write.
type chunkRecorder struct{ sizes []int }

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return len(p), nil
}

// TestFrameWriterChunks: small frames of one message leave in one write;
// a big frame leaves in writes of at most bufioSize (yamux keeps a buffer
// as big as its largest write per session); the kept buffer is bounded.
func TestFrameWriterChunks(t *testing.T) {
	var rec chunkRecorder
	f := &frameWriter{w: &rec}
	for _, n := range []int{4, 20, 4, 300} { // header and body frames of a call
		if _, err := f.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(rec.sizes) != 1 || rec.sizes[0] != 328 {
		t.Fatalf("small message written as %v, want one write of 328", rec.sizes)
	}
	rec.sizes = nil
	if _, err := f.Write(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 3*bufioSize+10)); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range rec.sizes {
		if n > bufioSize {
			t.Fatalf("write of %d bytes (max %d): %v", n, bufioSize, rec.sizes)
		}
		total += n
	}
	if total != 3*bufioSize+14 {
		t.Fatalf("wrote %d bytes, want %d", total, 3*bufioSize+14)
	}
	if cap(f.buf) > keptFrameBuffer {
		t.Fatalf("kept a %d-byte buffer (max %d)", cap(f.buf), keptFrameBuffer)
	}
}
