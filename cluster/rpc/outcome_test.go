package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestOutcomeUnknownCrossesTheWire: a handler's ErrWriteOutcomeUnknown,
// wrapped with details, reaches the caller as that sentinel, text intact,
// so a client agent and the CLI can say so plainly.
func TestOutcomeUnknownCrossesTheWire(t *testing.T) {
	srv := NewServer(zap.NewNop(), prometheus.NewRegistry(), DefaultLimits())
	cause := fmt.Errorf("%w: KVS.Apply forwarded to leader 10.0.0.1:8300: leader changed", structs.ErrWriteOutcomeUnknown)
	srv.Handle("Test.Write", func(ctx context.Context, dec Decoder) (any, error) {
		var a struct{}
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		return nil, cause
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
		<-done
	})
	sess, err := Dial(ctx, ln.Addr().String(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Call(ctx, "Test.Write", &struct{}{}, nil)
	if !errors.Is(err, structs.ErrWriteOutcomeUnknown) {
		t.Fatalf("got %v (%T), want ErrWriteOutcomeUnknown", err, err)
	}
	if !strings.Contains(err.Error(), "may or may not have been applied") || !strings.Contains(err.Error(), "leader changed") {
		t.Fatalf("message lost on the way: %q", err)
	}
}
