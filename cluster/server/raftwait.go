package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// errAbandoned: a wait on a Raft future ended because its owner (the
// server, or the leadership) ended first; what the future stood for may
// or may not happen.
var errAbandoned = errors.New("server: closing: gave up waiting for raft")

// wait waits for Raft's answer to f, or until the server closes.
func (s *Server) wait(f raft.Future) error { return waitFuture(s.ctx, f) }

// waitFuture waits for Raft's answer to f, or until ctx ends. Raft may
// never answer a future it accepted as it shut down: Apply, Barrier,
// VerifyLeader and GetConfiguration select between its shutdown channel
// and a buffered channel (the apply channel under BatchApplyCh, verifyCh,
// configurationsCh), pick at random when both are ready, and nothing
// drains those buffers afterwards. Waiting on such a future blocked the
// leader loop (a cluster/server test hung 14 minutes in CI) and RPC
// handlers, and so Close and an agent's SIGTERM, forever
// (TestWaitsEndWhenServerCloses). The waiter goroutine ends when Raft
// answers: for every future but those, whose waiter lives on holding only
// the future until the process exits.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (%w)", errAbandoned, ctx.Err())
	}
}

// barrier waits for a Raft barrier while ctx (the leadership) lasts.
func (s *Server) barrier(ctx context.Context) error {
	return waitFuture(ctx, s.raft.Barrier(time.Minute))
}
