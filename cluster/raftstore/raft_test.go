package raftstore

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/testutil"
)

// countFSM records applied commands.
type countFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return nil
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnap{}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noopSnap struct{}

func (noopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (noopSnap) Release()                          {}

func startRaft(t *testing.T, dir string, fsm raft.FSM) (*raft.Raft, *Store) {
	t.Helper()
	store, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := NewSnapshotStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.LogOutput = io.Discard
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	_, trans := raft.NewInmemTransport("n1")
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	return r, store
}

// isLeader is the condition a test waits on after bootstrap or restart.
func isLeader(r *raft.Raft) func() error {
	return func() error {
		if s := r.State(); s != raft.Leader {
			return fmt.Errorf("state %v", s)
		}
		return nil
	}
}

// TestRaftRestart runs real raft on the store, restarts it from the same
// directory and checks that term, vote and every committed entry survive.
func TestRaftRestart(t *testing.T) {
	dir := t.TempDir()
	fsm := &countFSM{}
	r, store := startRaft(t, dir, fsm)
	err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: "n1"}}}).Error()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "single node to lead", isLeader(r))
	for _, c := range []string{"a", "b", "c"} {
		if err := r.Apply([]byte(c), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	last, _ := store.LastIndex()
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	fsm2 := &countFSM{}
	r2, store2 := startRaft(t, dir, fsm2)
	defer func() {
		_ = r2.Shutdown().Error()
		_ = store2.Close()
	}()
	if got, _ := store2.LastIndex(); got != last {
		t.Fatalf("last index after restart = %d, want %d", got, last)
	}
	if term, err := store2.GetUint64([]byte("CurrentTerm")); err != nil || term == 0 {
		t.Fatalf("CurrentTerm after restart = %d, %v", term, err)
	}
	testutil.Eventually(t, 5*time.Second, "restarted node to lead", isLeader(r2))
	if err := r2.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	fsm2.mu.Lock()
	defer fsm2.mu.Unlock()
	if len(fsm2.cmds) != 3 || fsm2.cmds[0] != "a" || fsm2.cmds[2] != "c" {
		t.Fatalf("replayed commands = %q, want [a b c]", fsm2.cmds)
	}
}
