package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// openPipeline opens the session's pipeline as an overlapping call would.
func openPipeline(t *testing.T, s *Session) *pipeline {
	t.Helper()
	return s.pipelineFor(context.Background(), 2)
}

// TestPipelineCalls runs the same calls over the pipeline and, against a
// server without it (an older version), over a stream each: results,
// sentinel errors, reply zeroing and the frame limit behave the same.
func TestPipelineCalls(t *testing.T) {
	for _, tc := range []struct {
		name     string
		serverOn bool
	}{{"pipeline", true}, {"older server", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Limits{MaxFrameSize: 64 << 10})
			ts.srv.noPipeline = !tc.serverOn
			ts.srv.Handle("Test.NotLeader", func(context.Context, Decoder) (any, error) { return nil, structs.ErrNotLeader })
			ts.srv.Handle("Test.Map", func(context.Context, Decoder) (any, error) { return map[string]string{"a": "1"}, nil })
			ts.srv.Handle("Test.Panic", func(context.Context, Decoder) (any, error) { panic("bad handler") })
			ts.srv.HandleStream("Test.Stream", func(context.Context, Decoder, func() (*Stream, error)) error { return nil })
			s, err := Dial(context.Background(), ts.addr, DialOptions{Timeout: 2 * time.Second, MaxFrameSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })

			p := openPipeline(t, s)
			if tc.serverOn != (p != nil) {
				t.Fatalf("pipeline opened = %v, want %v", p != nil, tc.serverOn)
			}
			if !tc.serverOn && s.pipeMode.Load() != pipeUnsupported {
				t.Fatal("refused pipeline not remembered: every call would retry it")
			}

			const n = 300
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var out echoArgs
					if err := s.Call(context.Background(), "Test.Echo", &echoArgs{Msg: fmt.Sprint("m", i), N: i}, &out); err != nil {
						errs <- err
					} else if out.N != i || out.Msg != fmt.Sprint("m", i) {
						errs <- fmt.Errorf("call %d got %+v", i, out)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			// Each of these runs with another call in flight, so it goes
			// over the pipeline when there is one.
			hold := make(chan struct{})
			ts.srv.Handle("Test.Hold", func(ctx context.Context, _ Decoder) (any, error) { <-hold; return nil, nil })
			held := make(chan error, 1)
			go func() { held <- s.Call(context.Background(), "Test.Hold", nil, nil) }()
			testutil.Eventually(t, 5*time.Second, "held call in flight", func() error {
				if s.calls.Load() < 1 {
					return errors.New("not yet")
				}
				return nil
			})
			ctx := context.Background()
			if err := s.Call(ctx, "Test.NotLeader", nil, nil); !errors.Is(err, structs.ErrNotLeader) {
				t.Errorf("NotLeader: got %v", err)
			}
			var re RemoteError
			if err := s.Call(ctx, "Test.Nope", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "unknown method") {
				t.Errorf("unknown method: got %#v", err)
			}
			if err := s.Call(ctx, "Test.Panic", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "internal error") {
				t.Errorf("panic: got %#v", err)
			}
			if err := s.Call(ctx, "Test.Stream", nil, nil); err == nil {
				t.Error("a stream method answered a plain call")
			}
			reply := map[string]string{"old": "x"}
			if err := s.Call(ctx, "Test.Map", nil, &reply); err != nil || len(reply) != 1 || reply["a"] != "1" {
				t.Errorf("reply not zeroed: %v %v", reply, err)
			}
			// A frame of many yamux writes (writeChunked) arrives whole.
			var big echoArgs
			if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: strings.Repeat("y", 60<<10)}, &big); err != nil || len(big.Msg) != 60<<10 {
				t.Errorf("60 KiB echo: %d bytes, %v", len(big.Msg), err)
			}
			var te *TransportError
			if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: strings.Repeat("x", 70<<10)}, nil); !errors.Is(err, ErrFrameTooLarge) || errors.As(err, &te) {
				t.Errorf("oversized request: got %v, want ErrFrameTooLarge and no TransportError", err)
			}
			if tc.serverOn && s.pipe.Load() != p {
				t.Error("the pipeline was replaced during healthy calls")
			}
			close(hold)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPipelineCancelAndDeath: a cancelled pipelined call returns ctx's
// error and leaves the pipeline usable; a session dying under pending
// pipelined calls reports them as maybe sent.
func TestPipelineCancelAndDeath(t *testing.T) {
	ts := startServer(t, Limits{})
	started := make(chan struct{}, 4)
	ts.srv.Handle("Test.Block", func(ctx context.Context, _ Decoder) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s := dial(t, ts.addr)
	p := openPipeline(t, s)
	if p == nil {
		t.Fatal("no pipeline")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if err := p.callNow(ctx, "Test.Block"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want canceled", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := p.callNow(ctx2, "Test.Block"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if err := p.callNow(context.Background(), "Test.Echo"); err != nil {
		t.Fatalf("pipeline unusable after cancelled calls: %v", err)
	}
	if s.pipe.Load() != p {
		t.Fatal("pipeline dropped after cancelled calls")
	}

	done := make(chan error, 1)
	go func() { done <- p.callNow(context.Background(), "Test.Block") }()
	<-started
	<-started // the first two blocked handlers may still be running
	s.Close()
	select {
	case err := <-done:
		var te *TransportError
		if !errors.As(err, &te) || !te.MaybeSent {
			t.Fatalf("pending call on a dead session: %#v, want maybe-sent TransportError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending pipelined call not failed when the session died")
	}
	select {
	case <-p.readerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("pipeline reader still running after session death")
	}
}

// callNow sends one call over p regardless of the session's state.
func (p *pipeline) callNow(ctx context.Context, method string) error {
	err, ok := p.call(ctx, method, &echoArgs{}, nil)
	if !ok {
		return errors.New("pipeline closed")
	}
	return err
}

// TestPipelineIdleClose: an unused pipeline is closed by the client, the
// server ends its side (its worker is free again), and calls go on.
func TestPipelineIdleClose(t *testing.T) {
	ts := startServer(t, Limits{})
	s := dial(t, ts.addr)
	p := openPipeline(t, s)
	if err := p.callNow(context.Background(), "Test.Echo"); err != nil {
		t.Fatal(err)
	}
	p.idleCheck() // just used: stays
	if s.pipe.Load() != p {
		t.Fatal("pipeline closed while recently used")
	}
	p.mu.Lock()
	p.lastUse = time.Now().Add(-pipelineIdle)
	p.mu.Unlock()
	p.idleCheck()
	select {
	case <-p.readerDone: // the server closed its side after our FIN
	case <-time.After(5 * time.Second):
		t.Fatal("server did not end an idle-closed pipeline")
	}
	if s.pipe.Load() != nil {
		t.Fatal("closed pipeline still installed")
	}
	testutil.Eventually(t, 5*time.Second, "no stream left open", func() error {
		if n := s.NumStreams(); n != 0 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
	if err := s.Call(context.Background(), "Test.Echo", &echoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	if p2 := openPipeline(t, s); p2 == nil || p2 == p {
		t.Fatal("no fresh pipeline after an idle close")
	}
}

// TestPipelineBadFrames: malformed pipeline frames close that pipeline
// only, counted by reason; a well-behaved session is unaffected.
func TestPipelineBadFrames(t *testing.T) {
	ts := startServer(t, Limits{MaxFrameSize: 1 << 10})
	good := dial(t, ts.addr)
	codecs := newCodecPool()
	for _, tc := range []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"length over limit", binary.BigEndian.AppendUint32(nil, 1<<20), "frame_too_large"},
		{"empty method", append(binary.BigEndian.AppendUint32(nil, 6), 0, 0, 0, 1, 0, 0xc0), "bad_request"},
		{"method longer than frame", append(binary.BigEndian.AppendUint32(nil, 6), 0, 0, 0, 1, 9, 'x'), "bad_request"},
		{"short header", append(binary.BigEndian.AppendUint32(nil, 2), 0, 1), "bad_request"},
		{"truncated", append(binary.BigEndian.AppendUint32(nil, 100), 0, 0, 0, 1, 1), "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(t, ts.srv.metrics.rejected.WithLabelValues(tc.reason))
			mux := rawSession(t, ts.addr)
			ys, err := mux.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			st := codecs.get(ys, ys)
			if err := st.writeFrame(&requestHeader{Method: pipelineMethod}, 1<<10); err != nil {
				t.Fatal(err)
			}
			if err := st.writeFrame(nil, 1<<10); err != nil {
				t.Fatal(err)
			}
			if err := st.bw.Flush(); err != nil {
				t.Fatal(err)
			}
			if resp, err := st.readResponse(1 << 10); err != nil || resp.Error != "" {
				t.Fatalf("pipeline ack: %+v %v", resp, err)
			}
			if _, err := ys.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			if tc.reason == "truncated" {
				ys.Close() // end the stream mid-frame
			}
			expectEOF(t, ys, 5*time.Second)
			testutil.Eventually(t, 5*time.Second, "refusal counted", func() error {
				if got := counterValue(t, ts.srv.metrics.rejected.WithLabelValues(tc.reason)); got != before+1 {
					return fmt.Errorf("rejected{%s} = %v, want %v", tc.reason, got, before+1)
				}
				return nil
			})
			if err := good.Call(context.Background(), "Test.Echo", &echoArgs{Msg: "ok"}, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDecodeBinaryFastPath: a raft write request decodes the same through
// the direct BinaryUnmarshaler path as through msgpack, and bodies that
// are not exactly one byte string still go through msgpack.
func TestDecodeBinaryFastPath(t *testing.T) {
	pool := newCodecPool()
	for _, tc := range []struct {
		name      string
		in        any
		out, want func() any
	}{
		{"register", &structs.RegisterRequest{Datacenter: "dc1", Node: "n1", Address: "10.0.0.1", NodeMeta: map[string]string{"k": "v"},
			Service: &structs.NodeService{ID: "web-1", Service: "web", Tags: []string{"a", "b"}, Port: 80, Weights: &structs.Weights{Passing: 3, Warning: 1}},
			Checks:  []*structs.HealthCheck{{Node: "n1", CheckID: "c1", Status: "passing"}}},
			func() any { return &structs.RegisterRequest{} }, func() any { return &structs.RegisterRequest{} }},
		{"kv", &structs.KVSRequest{Datacenter: "dc1", Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "k", Value: bytes.Repeat([]byte("v"), 70000), Flags: 9}},
			func() any { return &structs.KVSRequest{} }, func() any { return &structs.KVSRequest{} }},
		{"deregister", &structs.DeregisterRequest{Datacenter: "dc1", Node: "n1", ServiceID: "web-1"},
			func() any { return &structs.DeregisterRequest{} }, func() any { return &structs.DeregisterRequest{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := structs.EncodeMsgpack(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := msgpackBytes(body); !ok {
				t.Fatalf("body %x... is not one byte string: the fast path would never run", body[:min(8, len(body))])
			}
			st := pool.get(nil, nil)
			defer pool.put(st)
			st.body = body
			got, want := tc.out(), tc.want()
			if err := st.Decode(got); err != nil {
				t.Fatal(err)
			}
			if err := structs.DecodeMsgpack(body, want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("fast path %+v, msgpack %+v, sent %+v", got, want, tc.in)
			}
			// A truncated command fails, as it does through msgpack.
			raw, _ := msgpackBytes(body)
			if st.body, err = structs.EncodeMsgpack(raw[:len(raw)-1]); err != nil {
				t.Fatal(err)
			}
			if err := st.Decode(tc.out()); !errors.Is(err, structs.ErrBadCommand) {
				t.Fatalf("truncated command: %v", err)
			}
			if err := structs.DecodeMsgpack(st.body, tc.out()); err == nil {
				t.Fatal("msgpack accepted the truncated command: the paths differ")
			}
		})
	}
	for _, tc := range []struct {
		b    []byte
		want []byte
		ok   bool
	}{
		{[]byte{0xa2, 'h', 'i'}, []byte("hi"), true},
		{[]byte{0xc4, 2, 1, 2}, []byte{1, 2}, true},
		{[]byte{0xd9, 1, 7}, []byte{7}, true},
		{[]byte{0xc5, 0, 1, 9}, []byte{9}, true},
		{[]byte{0xc6, 0, 0, 0, 1, 9}, []byte{9}, true},
		{[]byte{0xc4, 3, 1, 2}, nil, false}, // short
		{[]byte{0xc4, 1, 1, 2}, nil, false}, // trailing
		{[]byte{0xc6, 0xff, 0xff, 0xff, 0xff}, nil, false},
		{[]byte{0xc0}, nil, false}, // nil: msgpack decides
		{[]byte{0x81, 0xa1, 'a', 1}, nil, false},
		{nil, nil, false},
	} {
		got, ok := msgpackBytes(tc.b)
		if ok != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("msgpackBytes(%x) = %x, %v; want %x, %v", tc.b, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzPipelineRequest: the pipeline request parser and the byte-string
// check never panic, and what they return lies inside their input.
func FuzzPipelineRequest(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 9, 'T', 'e', 's', 't', '.', 'E', 'c', 'h', 'o', 0xc4, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 200, 'x'})
	f.Add([]byte{0xc6, 0, 0, 0, 1, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if id, m, body, err := parsePipelineRequest(data); err == nil {
			if len(m) == 0 || pipelineReqHeader+len(m)+len(body) != len(data) || id != binary.BigEndian.Uint32(data) {
				t.Fatalf("parse(%x) = %d %x %x", data, id, m, body)
			}
		}
		if raw, ok := msgpackBytes(data); ok && (len(raw) >= len(data) || !bytes.HasSuffix(data, raw)) {
			t.Fatalf("msgpackBytes(%x) = %x", data, raw)
		}
	})
}

// TestPipelineConcurrencyBounded: pipelined requests take the session's
// MaxConcurrentStreams slots like streams do (the pipeline's reader holds
// one), so one peer still cannot pin more handlers than that.
func TestPipelineConcurrencyBounded(t *testing.T) {
	const limit = 4
	ts := startServer(t, Limits{MaxConcurrentStreams: limit})
	var running, peak atomic.Int32
	release := make(chan struct{})
	ts.srv.Handle("Test.Wait", func(ctx context.Context, _ Decoder) (any, error) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil, nil
	})
	s := dial(t, ts.addr)
	p := openPipeline(t, s)
	if p == nil {
		t.Fatal("no pipeline")
	}
	const calls = 20
	errs := make(chan error, calls)
	for range calls {
		go func() { errs <- p.callNow(context.Background(), "Test.Wait") }()
	}
	testutil.Eventually(t, 5*time.Second, "handlers at the limit", func() error {
		if n := running.Load(); n != limit-1 {
			return fmt.Errorf("%d handlers running", n)
		}
		return nil
	})
	close(release)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := peak.Load(); got != limit-1 {
		t.Fatalf("peak %d handlers, want %d (limit %d less the pipeline's reader)", got, limit-1, limit)
	}
}

// TestPipelineKeepsTokensApart: calls with ACL tokens never ride the
// pipeline (its frames carry no token), so a server sees each call's own
// token, never another caller's or none, while tokenless calls on the same
// session keep using the pipeline.
func TestPipelineKeepsTokensApart(t *testing.T) {
	ts := startServer(t, Limits{MaxFrameSize: 64 << 10})
	ts.srv.Handle("Test.Token", func(ctx context.Context, _ Decoder) (any, error) { return acl.TokenFromContext(ctx), nil })
	s, err := Dial(context.Background(), ts.addr, DialOptions{Timeout: 2 * time.Second, MaxFrameSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if openPipeline(t, s) == nil {
		t.Fatal("no pipeline opened")
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := ""
			ctx := context.Background()
			if i%2 == 0 {
				want = fmt.Sprint("secret-", i)
				ctx = acl.ContextWithToken(ctx, want)
			}
			var got string
			if err := s.Call(ctx, "Test.Token", nil, &got); err != nil {
				errs <- err
			} else if got != want {
				errs <- fmt.Errorf("call %d: server saw token %q, want %q", i, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
