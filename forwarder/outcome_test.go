package forwarder

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// A write whose caller gives up while the server holds it may still be
// applied: the forwarder says outcome unknown. A read just fails with the
// caller's error. A server's own outcome-unknown answer passes through.
func TestWriteOutcomeUnknownWhenCallerGivesUp(t *testing.T) {
	srv := rpc.NewServer(zap.NewNop(), prometheus.NewRegistry(), rpc.DefaultLimits())
	held := make(chan struct{}, 8)
	hold := func(ctx context.Context, dec rpc.Decoder) (any, error) {
		var a struct{}
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		held <- struct{}{}
		<-ctx.Done() // the server holds it until the stream goes away
		return nil, ctx.Err()
	}
	srv.Handle("Test.Write", hold)
	srv.Handle("Test.Read", hold)
	srv.Handle("Test.Unknown", func(ctx context.Context, dec rpc.Decoder) (any, error) {
		var a struct{}
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		return nil, structs.ErrWriteOutcomeUnknown
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		srv.Close()
		<-done
	}()

	f := New(DefaultConfig(), nil, nil)
	f.SetServers([]string{ln.Addr().String()})
	runDone := make(chan error, 1)
	go func() { runDone <- f.Run(ctx) }()
	defer func() {
		f.Close()
		<-runDone
	}()

	call := func(method string, idempotent bool) error {
		cctx, ccancel := context.WithCancel(context.Background())
		defer ccancel()
		errc := make(chan error, 1)
		go func() { errc <- f.Call(cctx, method, &struct{}{}, nil, idempotent) }()
		select {
		case <-held: // the server has the request: now the caller gives up
			ccancel()
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the server never received the request", method)
		}
		return <-errc
	}
	if err := call("Test.Write", false); !errors.Is(err, ErrWriteOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Errorf("write abandoned in flight: %v, want outcome unknown (context canceled)", err)
	}
	if err := call("Test.Read", true); errors.Is(err, ErrWriteOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Errorf("read abandoned in flight: %v, want the caller's context error", err)
	}
	if err := call("Test.Unknown", false); !errors.Is(err, ErrWriteOutcomeUnknown) {
		t.Errorf("server's outcome-unknown answer: %v", err)
	}
}
