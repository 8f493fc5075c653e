package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"

	"github.com/cairnd/cairn/cluster/connlimit"
	"github.com/cairnd/cairn/cluster/testutil"
)

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func dialFrom(t *testing.T, addr, src string) (*Session, error) {
	t.Helper()
	s, err := Dial(context.Background(), addr, DialOptions{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// The 101st session from one IP is refused at once; another IP is served.
func TestMaxConnsPerClient(t *testing.T) {
	ts := startServerGated(t, Limits{}, true) // defaults: 100 per client
	for i := range DefaultMaxConnsPerClient {
		if _, err := dialFrom(t, ts.addr, "127.0.0.1"); err != nil {
			t.Fatalf("session %d from 127.0.0.1: %v", i+1, err)
		}
	}
	for i := range 5 {
		if s, err := dialFrom(t, ts.addr, "127.0.0.1"); err == nil {
			s.Close()
			t.Fatalf("session %d from 127.0.0.1 accepted over the cap of %d", DefaultMaxConnsPerClient+1+i, DefaultMaxConnsPerClient)
		}
	}
	other, err := dialFrom(t, ts.addr, "127.0.0.2")
	if err != nil {
		t.Fatalf("session from 127.0.0.2 while 127.0.0.1 is at its cap: %v", err)
	}
	var out echoArgs
	if err := other.Call(context.Background(), "Test.Echo", &echoArgs{N: 7}, &out); err != nil || out.N != 7 {
		t.Fatalf("call from 127.0.0.2: %v %+v", err, out)
	}
	if got := counterValue(t, ts.srv.connMetrics.Refused(connlimit.ReasonPerClient)); got != 5 {
		t.Fatalf("cairn_rpc_conns_refused_total{reason=per_client} = %v, want 5", got)
	}
	if n := ts.logs.FilterMessageSnippet("connection limit reached").Len(); n != 1 {
		t.Fatalf("%d limit log lines for 5 refusals from one peer, want 1", n)
	}
}

// A session with no stream for SessionIdleTimeout is closed; a session
// in use is not.
func TestIdleSessionClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := startServer(t, Limits{SessionIdleTimeout: idle})
	busy := dial(t, ts.addr)
	quiet := dial(t, ts.addr)
	start := time.Now()
	// Keep busy in use, a call every idle/6, until quiet is closed and
	// then for 3 more idle periods.
	pace := time.NewTicker(idle / 6)
	defer pace.Stop()
	var closedAt time.Time
	for i := 0; closedAt.IsZero() || time.Since(closedAt) < 3*idle; i++ {
		select {
		case <-quiet.CloseChan():
			if closedAt.IsZero() {
				closedAt = time.Now()
			}
		case <-pace.C:
		case <-time.After(10 * time.Second):
			t.Fatal("idle session not closed within 10s")
		}
		if err := busy.Call(context.Background(), "Test.Echo", &echoArgs{N: i}, nil); err != nil {
			t.Fatalf("busy session call %d: %v", i, err)
		}
	}
	if d := closedAt.Sub(start); d < idle {
		t.Fatalf("idle session closed after %v, before the idle timeout %v", d, idle)
	}
	if busy.IsClosed() {
		t.Fatal("busy session was closed")
	}
	if got := counterValue(t, ts.srv.metrics.rejected.WithLabelValues("session_idle")); got != 1 {
		t.Fatalf("rejected{session_idle} = %v, want 1", got)
	}
}

// A raw raft connection that sends nothing is closed after
// RaftIdleTimeout, and the raft side sees a clean EOF.
func TestIdleRaftConnClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := startServer(t, Limits{RaftIdleTimeout: idle})
	layer := ts.srv.RaftLayer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	readErr := make(chan error, 1)
	go func() {
		c, err := layer.Accept()
		if err != nil {
			readErr <- err
			return
		}
		defer c.Close()
		_, err = io.ReadAll(c) // as raft's handleConn: read until an error
		if err == nil {
			err = io.EOF
		}
		readErr <- err
	}()
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte{ProtoRaft}); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, conn, 10*time.Second)
	if d := time.Since(start); d < idle {
		t.Fatalf("raft connection closed after %v, before the idle timeout", d)
	}
	if err := <-readErr; !errors.Is(err, io.EOF) {
		t.Fatalf("raft side read error = %v, want io.EOF (raft logs anything else)", err)
	}
	if got := counterValue(t, ts.srv.metrics.rejected.WithLabelValues("raft_idle")); got != 1 {
		t.Fatalf("rejected{raft_idle} = %v, want 1", got)
	}
}

// Raft pools connections: one left idle past the peer's idle timeout must
// still carry the next vote request (the dialling side redials it).
func TestRaftPooledConnSurvivesIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	a := startServer(t, Limits{RaftIdleTimeout: idle})
	b := startServer(t, Limits{RaftIdleTimeout: idle})
	la := a.srv.RaftLayer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	lb := b.srv.RaftLayer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	ta := raft.NewNetworkTransport(la, 3, 2*time.Second, io.Discard)
	tb := raft.NewNetworkTransport(lb, 3, 2*time.Second, io.Discard)
	t.Cleanup(func() { ta.Close(); tb.Close() })
	go func() {
		for rpc := range tb.Consumer() {
			req := rpc.Command.(*raft.RequestVoteRequest)
			rpc.Respond(&raft.RequestVoteResponse{RPCHeader: req.RPCHeader, Term: req.Term, Granted: true}, nil)
		}
	}()
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("a"), Addr: []byte(a.addr)}
	vote := func(term uint64) error {
		var resp raft.RequestVoteResponse
		err := ta.RequestVote("b", raft.ServerAddress(b.addr), &raft.RequestVoteRequest{RPCHeader: hdr, Term: term}, &resp)
		if err == nil && (!resp.Granted || resp.Term != term) {
			err = fmt.Errorf("vote = %+v", resp)
		}
		return err
	}
	if err := vote(1); err != nil {
		t.Fatal(err)
	}
	// b closes the pooled connection once it has been idle for idle.
	testutil.Eventually(t, 10*time.Second, "b closes the idle raft connection", func() error {
		if counterValue(t, b.srv.metrics.rejected.WithLabelValues("raft_idle")) < 1 {
			return errors.New("not yet")
		}
		return nil
	})
	for term := uint64(2); term < 5; term++ {
		if err := vote(term); err != nil {
			t.Fatalf("vote on a pooled connection after the peer's idle timeout: %v", err)
		}
	}
}

// A peer sending a flood of bad connections earns one log line a minute;
// another peer still gets its own line.
func TestBadConnLogGatedPerPeer(t *testing.T) {
	ts := startServerGated(t, Limits{}, true)
	bad := func(src string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{0x7f}); err != nil {
			t.Fatal(err)
		}
		expectEOF(t, c, 5*time.Second)
	}
	for range 20 {
		bad("127.0.0.1")
	}
	bad("127.0.0.2")
	testutil.Eventually(t, 5*time.Second, "21 rejections counted", func() error {
		if n := counterValue(t, ts.srv.metrics.rejected.WithLabelValues("protocol")); n != 21 {
			return fmt.Errorf("rejected{protocol} = %v", n)
		}
		return nil
	})
	lines := ts.logs.FilterMessageSnippet("closing connection").All()
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 21 bad connections from 2 peers, want 2", len(lines))
	}
	for i, want := range []string{"127.0.0.1:", "127.0.0.2:"} {
		if r := fmt.Sprint(lines[i].ContextMap()["remote"]); !strings.HasPrefix(r, want) {
			t.Errorf("line %d remote = %s, want %s…", i, r, want)
		}
	}
}
