package forwarder

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

type echoArgs struct {
	Msg string
	N   int
}

// testServer is an rpc.Server on 127.0.0.1:0 whose handlers count calls.
type testServer struct {
	srv   *rpc.Server
	addr  string
	port  int
	calls sync.Map // method -> *atomic.Int64
	// block makes Block-style handlers wait for ctx (the session's death).
	block   atomic.Bool
	release chan struct{}
	once    sync.Once
}

func (s *testServer) count(method string) int64 {
	v, _ := s.calls.LoadOrStore(method, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (s *testServer) inc(method string) {
	v, _ := s.calls.LoadOrStore(method, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (s *testServer) stop() { s.once.Do(func() { s.srv.Close() }) }

func startServers(t testing.TB, n int) []*testServer {
	t.Helper()
	out := make([]*testServer, n)
	for i := range out {
		ts := &testServer{release: make(chan struct{})}
		ts.srv = rpc.NewServer(zap.NewNop(), nil, rpc.Limits{})
		ts.srv.Handle("Test.Echo", func(ctx context.Context, dec rpc.Decoder) (any, error) {
			ts.inc("Test.Echo")
			var a echoArgs
			if err := dec.Decode(&a); err != nil {
				return nil, err
			}
			return &a, nil
		})
		// Barrier holds every call until the test closes release.
		ts.srv.Handle("Test.Barrier", func(ctx context.Context, dec rpc.Decoder) (any, error) {
			ts.inc("Test.Barrier")
			select {
			case <-ts.release:
				return &echoArgs{Msg: ts.addr}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		// Write and Read block while ts.block is set, until the session dies.
		for _, m := range []string{"Test.Write", "Test.Read"} {
			ts.srv.Handle(m, func(ctx context.Context, dec rpc.Decoder) (any, error) {
				ts.inc(m)
				if ts.block.Load() {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return &echoArgs{Msg: ts.addr}, nil
			})
		}
		ts.srv.Handle("Test.Fail", func(context.Context, rpc.Decoder) (any, error) {
			ts.inc("Test.Fail")
			return nil, structs.ErrNotLeader
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts.addr = ln.Addr().String()
		ts.port = ln.Addr().(*net.TCPAddr).Port
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = ts.srv.Serve(context.Background(), ln)
		}()
		t.Cleanup(func() {
			ts.stop()
			<-done
		})
		out[i] = ts
	}
	return out
}

func addrs(servers []*testServer) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.addr
	}
	return out
}

func byAddr(servers []*testServer, addr string) *testServer {
	for _, s := range servers {
		if s.addr == addr {
			return s
		}
	}
	return nil
}

// startForwarder runs a Forwarder until the test ends.
func startForwarder(t testing.TB, cfg Config, servers []string) (*Forwarder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	f := New(cfg, logger, reg)
	if servers != nil {
		f.SetServers(servers)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	t.Cleanup(func() {
		f.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f, reg
}

// metricValue sums every series of the named metric.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}

// establishedTo counts this process's ESTABLISHED TCP sockets whose remote
// port is one of ports. The servers live in this process too, but their
// accepted sockets have the server port as the local end, so only the
// client side of each connection is counted. Sockets are matched to this
// process through the inodes behind /proc/self/fd.
func establishedTo(t testing.TB, servers []*testServer) int {
	t.Helper()
	ports := make(map[int]bool)
	for _, s := range servers {
		ports[s.port] = true
	}
	inodes := make(map[string]bool)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, file := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		fh, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[3] != "01" { // 01 = ESTABLISHED
				continue
			}
			remote := f[2]
			port, err := strconv.ParseInt(remote[strings.LastIndexByte(remote, ':')+1:], 16, 32)
			if err == nil && ports[int(port)] && inodes[f[9]] {
				n++
			}
		}
		fh.Close()
	}
	return n
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.RebalanceInterval = time.Hour // tests that rebalance say so
	return cfg
}

// connectedForwarder starts n test servers and a forwarder over them, and
// makes one call, so that it is connected to one of them.
func connectedForwarder(t *testing.T, n int) ([]*testServer, *Forwarder, *prometheus.Registry) {
	t.Helper()
	servers := startServers(t, n)
	f, reg := startForwarder(t, testConfig(), addrs(servers))
	if err := f.Call(context.Background(), "Test.Echo", &echoArgs{}, nil, true); err != nil {
		t.Fatal(err)
	}
	return servers, f, reg
}
