package server

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestWaitsEndWhenServerCloses: writes, consistent-read leader checks and
// configuration reads running while the server closes all return. Raft
// leaves a future unanswered when it accepted it into a buffered channel
// (the apply channel with BatchApplyCh, verifyCh, configurationsCh) as it
// shut down: its select picks at random between its shutdown channel
// and room in the buffer, and nothing drains the buffer afterwards. A
// waiter blocked on such a future kept an RPC handler, and so Close, (or
// an agent's SIGTERM) waiting forever.
func TestWaitsEndWhenServerCloses(t *testing.T) {
	s := testServer(t, "closing", 1, "", nil, nil)
	testutil.Eventually(t, 20*time.Second, "leadership", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("not leader")
		}
		return nil
	})
	waits := map[string]func(i int) error{
		"apply": func(i int) error {
			_, _, err := s.apply(structs.KVSRequestType, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: fmt.Sprintf("k%d", i%16), Value: []byte("v")}})
			return err
		},
		"verify leader": func(int) error { return s.wait(s.raft.VerifyLeader()) },
		"configuration": func(int) error { return s.wait(s.raft.GetConfiguration()) },
	}
	var (
		wg      sync.WaitGroup
		closed  atomic.Bool
		calls   atomic.Int64
		running sync.Map // name/worker -> time the current call started (unix nanos)
	)
	for name, call := range waits {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("%s/%d", name, w)
				for i := 0; ; i++ {
					after := closed.Load()
					running.Store(id, time.Now().UnixNano())
					call(i)
					running.Delete(id)
					calls.Add(1)
					if after {
						return // one call made after Close began is enough
					}
				}
			}()
		}
	}
	time.Sleep(300 * time.Millisecond)
	closed.Store(true)
	closeDone := make(chan struct{})
	go func() {
		s.Close()
		close(closeDone)
	}()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		var stuck []string
		running.Range(func(k, _ any) bool {
			stuck = append(stuck, k.(string))
			return true
		})
		t.Fatalf("calls still blocked 30 s after Close began: %v", stuck)
	}
	select {
	case <-closeDone:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if calls.Load() == 0 {
		t.Fatal("no call ran")
	}
}
