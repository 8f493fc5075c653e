package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/yamux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnd/cairn/cluster/connlimit"
)

type echoArgs struct {
	Msg string
	N   int
}

type testServer struct {
	srv  *Server
	addr string
	logs *observer.ObservedLogs
}

// startServer runs a Server on 127.0.0.1:0 with an echo handler.
func startServer(t testing.TB, lim Limits) *testServer {
	t.Helper()
	return startServerGated(t, lim, false)
}

// startServerGated is startServer; with gateLogs false every bad
// connection is logged (tests match each case's line), with true the
// production once-per-peer-per-minute gate applies.
func startServerGated(t testing.TB, lim Limits, gateLogs bool) *testServer {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	srv := NewServer(zap.New(core), prometheus.NewRegistry(), lim)
	if !gateLogs {
		srv.peerLog = connlimit.NewPeerLog(0)
	}
	srv.Handle("Test.Echo", func(ctx context.Context, dec Decoder) (any, error) {
		var a echoArgs
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		return &a, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), logs: logs}
}

func dial(t testing.TB, addr string) *Session {
	t.Helper()
	s, err := Dial(context.Background(), addr, DialOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEchoRoundTrip(t *testing.T) {
	ts := startServer(t, Limits{})
	s := dial(t, ts.addr)
	var out echoArgs
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{Msg: "hello", N: 42}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Msg != "hello" || out.N != 42 {
		t.Fatalf("echo = %+v", out)
	}
	// A nil reply discards the body.
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{Msg: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	// Structs types survive the wire.
	ts.srv.Handle("Test.Nodes", func(ctx context.Context, dec Decoder) (any, error) {
		var req structs.DCSpecificRequest
		if err := dec.Decode(&req); err != nil {
			return nil, err
		}
		return &structs.IndexedNodes{Nodes: []*structs.Node{{Node: "n1", Datacenter: req.Datacenter}}, QueryMeta: structs.QueryMeta{Index: 7, KnownLeader: true}}, nil
	})
	var nodes structs.IndexedNodes
	if err := s.Call(context.Background(), "Test.Nodes", &structs.DCSpecificRequest{Datacenter: "dc1"}, &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].Datacenter != "dc1" || nodes.Index != 7 || !nodes.KnownLeader {
		t.Fatalf("nodes = %+v", nodes)
	}
}

func TestConcurrentCallsOneSession(t *testing.T) {
	ts := startServer(t, Limits{})
	s := dial(t, ts.addr)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out echoArgs
			if err := s.Call(context.Background(), "Test.Echo", &echoArgs{Msg: fmt.Sprint("m", i), N: i}, &out); err != nil {
				errs <- err
				return
			}
			if out.N != i || out.Msg != fmt.Sprint("m", i) {
				errs <- fmt.Errorf("call %d got %+v", i, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHandlerErrors(t *testing.T) {
	ts := startServer(t, Limits{})
	ts.srv.Handle("Test.NotLeader", func(context.Context, Decoder) (any, error) { return nil, structs.ErrNotLeader })
	ts.srv.Handle("Test.CAS", func(context.Context, Decoder) (any, error) {
		return nil, fmt.Errorf("wrapped: %w", structs.ErrCASConflict)
	})
	ts.srv.Handle("Test.Boom", func(context.Context, Decoder) (any, error) { return nil, errors.New("boom") })
	ts.srv.Handle("Test.Panic", func(context.Context, Decoder) (any, error) { panic("bad handler") })
	s := dial(t, ts.addr)
	ctx := context.Background()

	if err := s.Call(ctx, "Test.NotLeader", nil, nil); !errors.Is(err, structs.ErrNotLeader) {
		t.Errorf("NotLeader: got %v", err)
	}
	// A wrapped sentinel travels as its full text: not a sentinel any more.
	var re RemoteError
	if err := s.Call(ctx, "Test.CAS", nil, nil); !errors.As(err, &re) || re.Msg != "wrapped: cas conflict" {
		t.Errorf("CAS: got %#v", err)
	}
	if err := s.Call(ctx, "Test.Boom", nil, nil); !errors.As(err, &re) || re.Msg != "boom" {
		t.Errorf("Boom: got %#v", err)
	}
	if err := s.Call(ctx, "Test.Nope", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "unknown method") {
		t.Errorf("unknown method: got %#v", err)
	}
	if err := s.Call(ctx, "Test.Panic", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "internal error") {
		t.Errorf("panic: got %#v", err)
	}
	// The session survives all of that.
	if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: "ok"}, nil); err != nil {
		t.Fatal(err)
	}
	if len(ts.logs.FilterMessage("rpc: handler panic").All()) != 1 {
		t.Error("panic not logged")
	}
}

func TestCallContextAndSessionDeath(t *testing.T) {
	ts := startServer(t, Limits{})
	handlerDone := make(chan struct{}, 2)
	block := func(started chan<- struct{}) Handler {
		return func(ctx context.Context, dec Decoder) (any, error) {
			if started != nil {
				started <- struct{}{}
			}
			<-ctx.Done()
			handlerDone <- struct{}{}
			return nil, ctx.Err()
		}
	}
	ts.srv.Handle("Test.Block", block(nil))
	// Test.BlockStarted tells the test its call reached the handler, so the
	// cancel below is known to interrupt a call in flight.
	started := make(chan struct{}, 1)
	ts.srv.Handle("Test.BlockStarted", block(started))
	s := dial(t, ts.addr)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Call(ctx, "Test.Block", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Call took %v after its deadline", d)
	}
	// Cancellation without a deadline.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { <-started; cancel2() }()
	if err := s.Call(ctx2, "Test.BlockStarted", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want canceled", err)
	}
	// Session still usable.
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	// Killing the session cancels the handlers' ctx.
	s.Close()
	for range 2 {
		select {
		case <-handlerDone:
		case <-time.After(3 * time.Second):
			t.Fatal("handler ctx not cancelled when session died")
		}
	}
	if !s.IsClosed() {
		t.Fatal("IsClosed false after Close")
	}
	select {
	case <-s.CloseChan():
	default:
		t.Fatal("CloseChan open after Close")
	}
	var te *TransportError
	if err := s.Call(context.Background(), "Test.Echo", nil, nil); !errors.As(err, &te) || te.MaybeSent {
		t.Fatalf("call on closed session: %#v, want unsent TransportError", err)
	}
}

// rawSession opens a yamux client over a raw connection, for sending
// hand-made frames on a stream.
func rawSession(t *testing.T, addr string) *yamux.Session {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte{ProtoRPC}); err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mux.Ping(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	return mux
}

// expectEOF asserts the peer closes r within d without sending anything.
func expectEOF(t *testing.T, r interface {
	io.Reader
	SetReadDeadline(time.Time) error
}, d time.Duration) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("want connection/stream closed by server, got n=%d err=%v", n, err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset"))
}

// warnLogged is the condition "a Warn log whose reason field contains want
// was written"; the entry is stored in *got if got is not nil.
func warnLogged(logs *observer.ObservedLogs, want string, got *observer.LoggedEntry) func() error {
	return func() error {
		for _, e := range logs.All() {
			if e.Level != zapcore.WarnLevel {
				continue
			}
			if r, ok := e.ContextMap()["reason"].(string); ok && strings.Contains(r, want) {
				if got != nil {
					*got = e
				}
				return nil
			}
		}
		return fmt.Errorf("no warn log with reason %q; logs: %v", want, logs.All())
	}
}

func TestBadInputIsolated(t *testing.T) {
	ts := startServer(t, Limits{
		MaxFrameSize:      1 << 20,
		StreamReadTimeout: 300 * time.Millisecond,
		HandshakeTimeout:  500 * time.Millisecond,
	})

	// A well-behaved session keeps succeeding while the abuse goes on.
	good := dial(t, ts.addr)
	stop := make(chan struct{})
	var okCalls, badCalls atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// One call a millisecond: steady traffic without hogging the CPU
		// the abusive connections' handling needs.
		pace := time.NewTicker(time.Millisecond)
		defer pace.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			var out echoArgs
			if err := good.Call(context.Background(), "Test.Echo", &echoArgs{N: i}, &out); err != nil || out.N != i {
				badCalls.Add(1)
				t.Errorf("good session call %d: %v (%+v)", i, err, out)
				return
			}
			okCalls.Add(1)
		}
	}()

	t.Run("random bytes", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		junk := make([]byte, 4096)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range junk {
			junk[i] = byte(rng.UintN(256))
		}
		junk[0], junk[1] = ProtoRPC, 0x9c // RPC, then a yamux version that does not exist
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
		expectEOF(t, conn, 3*time.Second)
		var e observer.LoggedEntry
		testutil.Eventually(t, 5*time.Second, "warn log: garbage yamux handshake", warnLogged(ts.logs, "garbage yamux handshake", &e))
		if e.ContextMap()["remote"] != conn.LocalAddr().String() {
			t.Errorf("log remote = %v, want %v", e.ContextMap()["remote"], conn.LocalAddr())
		}
	})

	t.Run("unknown first byte", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte{0x7f, 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		expectEOF(t, conn, 3*time.Second)
		testutil.Eventually(t, 5*time.Second, "warn log: unknown protocol byte 0x7f", warnLogged(ts.logs, "unknown protocol byte 0x7f", nil))
	})

	t.Run("silent connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		expectEOF(t, conn, 3*time.Second)
		testutil.Eventually(t, 5*time.Second, "warn log: no protocol byte", warnLogged(ts.logs, "no protocol byte", nil))
	})

	t.Run("truncated frame", func(t *testing.T) {
		mux := rawSession(t, ts.addr)
		st, err := mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 100)
		if _, err := st.Write(append(b[:], "only ten b"...)); err != nil {
			t.Fatal(err)
		}
		st.Close() // half-close: the server sees EOF mid-frame
		expectEOF(t, st, 3*time.Second)
		testutil.Eventually(t, 5*time.Second, "warn log: truncated request frame", warnLogged(ts.logs, "truncated request frame", nil))
		if mux.IsClosed() {
			t.Fatal("a bad stream must not kill its session")
		}
	})

	t.Run("100MB length prefix", func(t *testing.T) {
		mux := rawSession(t, ts.addr)
		st, err := mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 100_000_000)
		if _, err := st.Write(b[:]); err != nil {
			t.Fatal(err)
		}
		expectEOF(t, st, 3*time.Second)
		var e observer.LoggedEntry
		testutil.Eventually(t, 5*time.Second, "warn log: frame exceeds limit", warnLogged(ts.logs, "frame exceeds limit", &e))
		if !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "100000000") {
			t.Errorf("log does not name the length: %v", e.ContextMap())
		}
	})

	t.Run("stream never written", func(t *testing.T) {
		mux := rawSession(t, ts.addr)
		st, err := mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		start := time.Now()
		expectEOF(t, st, 3*time.Second)
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("stream closed after %v, before the read timeout", d)
		}
		testutil.Eventually(t, 5*time.Second, "warn log: no complete request within", warnLogged(ts.logs, "no complete request within", nil))
	})

	t.Run("garbage mid-session", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A valid yamux ping first, then a frame with a bad version.
		ping := []byte{ProtoRPC, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
		bad := []byte{7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
		if _, err := conn.Write(append(ping, bad...)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil && !isReset(err) {
			t.Fatalf("want close, got %v", err)
		}
		testutil.Eventually(t, 3*time.Second, "yamux protocol error logged", func() error {
			if len(ts.logs.FilterMessageSnippet("Invalid protocol version").All()) == 0 {
				return errors.New("not logged")
			}
			return nil
		})
	})

	close(stop)
	wg.Wait()
	if okCalls.Load() == 0 || badCalls.Load() != 0 {
		t.Fatalf("good session: %d ok, %d failed", okCalls.Load(), badCalls.Load())
	}
	// Still serving afterwards.
	if err := good.Call(context.Background(), "Test.Echo", &echoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestReadFrameRejectsBeforeAllocating(t *testing.T) {
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], 100_000_000)
	var lenBuf [frameLenSize]byte
	var r bytes.Reader
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(prefix[:])
		_, err := readFrame(&r, &lenBuf, nil, DefaultMaxFrameSize)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	// Only the error value itself may be allocated, never the 100 MB.
	var ms1, ms2 = new(runtimeMem), new(runtimeMem)
	ms1.read()
	r.Reset(prefix[:])
	_, _ = readFrame(&r, &lenBuf, nil, DefaultMaxFrameSize)
	ms2.read()
	if allocs > 5 || ms2.total-ms1.total > 1<<20 {
		t.Fatalf("rejecting a 100 MB prefix cost %v allocs, %d bytes", allocs, ms2.total-ms1.total)
	}
}

func TestRaftLayer(t *testing.T) {
	a := startServer(t, Limits{})
	b := startServer(t, Limits{})
	tcpAddr := func(s string) net.Addr { ad, _ := net.ResolveTCPAddr("tcp", s); return ad }
	la := a.srv.RaftLayer(tcpAddr(a.addr))
	lb := b.srv.RaftLayer(tcpAddr(b.addr))
	ta := raft.NewNetworkTransport(la, 3, 2*time.Second, io.Discard)
	tb := raft.NewNetworkTransport(lb, 3, 2*time.Second, io.Discard)
	t.Cleanup(func() { ta.Close(); tb.Close() })

	go func() {
		for rpc := range tb.Consumer() {
			switch req := rpc.Command.(type) {
			case *raft.RequestVoteRequest:
				rpc.Respond(&raft.RequestVoteResponse{RPCHeader: req.RPCHeader, Term: req.Term, Granted: true}, nil)
			case *raft.AppendEntriesRequest:
				rpc.Respond(&raft.AppendEntriesResponse{RPCHeader: req.RPCHeader, Term: req.Term, LastLog: req.PrevLogEntry + uint64(len(req.Entries)), Success: true}, nil)
			default:
				rpc.Respond(nil, fmt.Errorf("unexpected %T", req))
			}
		}
	}()

	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("a"), Addr: []byte(a.addr)}
	var vote raft.RequestVoteResponse
	if err := ta.RequestVote("b", raft.ServerAddress(b.addr), &raft.RequestVoteRequest{RPCHeader: hdr, Term: 5, LastLogIndex: 9, LastLogTerm: 4}, &vote); err != nil {
		t.Fatal(err)
	}
	if !vote.Granted || vote.Term != 5 {
		t.Fatalf("vote = %+v", vote)
	}
	var app raft.AppendEntriesResponse
	req := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 5, PrevLogEntry: 9, Entries: []*raft.Log{{Index: 10, Term: 5, Type: raft.LogCommand, Data: []byte("x")}}}
	if err := ta.AppendEntries("b", raft.ServerAddress(b.addr), req, &app); err != nil {
		t.Fatal(err)
	}
	if !app.Success || app.LastLog != 10 {
		t.Fatalf("append = %+v", app)
	}
	// The same port still serves RPC sessions.
	s := dial(t, b.addr)
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	if la.Addr().String() != a.addr {
		t.Fatalf("Addr = %v", la.Addr())
	}
}

func TestRaftRefusedWithoutLayer(t *testing.T) {
	ts := startServer(t, Limits{})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{ProtoRaft}); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, conn, 3*time.Second)
	testutil.Eventually(t, 5*time.Second, "warn log: no raft layer", warnLogged(ts.logs, "no raft layer", nil))
}

func TestServerCloseEndsSessions(t *testing.T) {
	ts := startServer(t, Limits{})
	s := dial(t, ts.addr)
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	ts.srv.Close()
	select {
	case <-s.CloseChan():
	case <-time.After(3 * time.Second):
		t.Fatal("client session survived server Close")
	}
	if _, err := Dial(context.Background(), ts.addr, DialOptions{Timeout: time.Second}); err == nil {
		t.Fatal("Dial succeeded after Close")
	}
}

func BenchmarkCall(b *testing.B) {
	ts := startServer(b, Limits{})
	s := dial(b, ts.addr)
	ctx := context.Background()
	in := &echoArgs{Msg: "ping", N: 1}
	var out echoArgs
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Call(ctx, "Test.Echo", in, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallParallel(b *testing.B) {
	ts := startServer(b, Limits{})
	s := dial(b, ts.addr)
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		in := &echoArgs{Msg: "ping", N: 1}
		var out echoArgs
		for pb.Next() {
			if err := s.Call(context.Background(), "Test.Echo", in, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
