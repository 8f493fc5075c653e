package fsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/structs"
)

// newerType is a message type this build does not know (as if a newer
// server wrote it during a rolling upgrade).
const newerType structs.MessageType = 77

// applyRecover applies l and returns the panic value, if Apply panicked.
func applyRecover(f *FSM, l *raft.Log) (out any, panicked any) {
	defer func() { panicked = recover() }()
	return f.Apply(l), nil
}

func TestUnknownTypeIgnorableIsSkipped(t *testing.T) {
	f := New(nil)
	if out := f.Apply(cmd(1, kvs(t, structs.KVSet, "a", "1", 0))); out != nil {
		t.Fatalf("set a: %v", out)
	}
	flagged := append([]byte{byte(newerType | structs.IgnoreUnknownTypeFlag)}, "any body a newer server wrote"...)
	out, p := applyRecover(f, cmd(2, flagged))
	if p != nil || out != nil {
		t.Fatalf("ignorable unknown type: response %v, panic %v; want skipped", out, p)
	}
	// The FSM keeps applying after the skipped entry.
	if out := f.Apply(cmd(3, kvs(t, structs.KVSet, "b", "2", 0))); out != nil {
		t.Fatalf("set b after the skipped entry: %v", out)
	}
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		if _, e := f.State().KVSGet(key); e == nil || string(e.Value) != want {
			t.Fatalf("%s = %v, want %q", key, e, want)
		}
	}
	if _, e := f.State().KVSGet("b"); e.ModifyIndex != 3 {
		t.Fatalf("b applied at index %d, want 3", e.ModifyIndex)
	}
}

func TestKnownTypeWithIgnoreFlagIsApplied(t *testing.T) {
	// As Consul: the flag only matters when the type is unknown.
	f := New(nil)
	b := kvs(t, structs.KVSet, "k", "v", 0)
	b[0] |= byte(structs.IgnoreUnknownTypeFlag)
	if out := f.Apply(cmd(1, b)); out != nil {
		t.Fatalf("flagged KV set: %v", out)
	}
	if _, e := f.State().KVSGet("k"); e == nil || string(e.Value) != "v" {
		t.Fatalf("flagged KV set not applied: %v", e)
	}
}

func TestUnknownTypeStopsTheServer(t *testing.T) {
	for name, data := range map[string][]byte{
		"unknown type":          {byte(newerType), 1, 2, 3},
		"unknown type, no body": {byte(newerType)},
		"newer command version": func() []byte {
			b := kvs(t, structs.KVSet, "k", "v", 0)
			b[1]++ // the format version byte follows the type
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			f := New(nil)
			if out := f.Apply(cmd(1, kvs(t, structs.KVSet, "before", "x", 0))); out != nil {
				t.Fatal(out)
			}
			out, p := applyRecover(f, cmd(2, data))
			if p == nil {
				t.Fatalf("applied an entry this server cannot read (response %v); want a panic, not divergence", out)
			}
			err, ok := p.(error)
			if !ok || !strings.Contains(err.Error(), "log 2") || !strings.Contains(err.Error(), "upgrade") {
				t.Fatalf("panic value %v does not name the entry and the remedy", p)
			}
			if f.State().Index() != 1 {
				t.Fatalf("state index %d after the refused entry, want 1", f.State().Index())
			}
		})
	}
	// A corrupt body of a known type is still a deterministic rejection:
	// every replica decodes the same bytes the same way.
	f := New(nil)
	out, p := applyRecover(f, cmd(1, []byte{byte(structs.KVSRequestType), 1, 0xff}))
	if err, ok := out.(error); p != nil || !ok || !errors.Is(err, structs.ErrBadCommand) {
		t.Fatalf("corrupt KV body: response %v, panic %v; want ErrBadCommand", out, p)
	}
}

// TestUnknownTypeStopsRaftProcess runs a one-node raft cluster over this
// FSM in a child process and commits an entry of an unknown type: the
// process must die, naming the entry, instead of applying later entries.
func TestUnknownTypeStopsRaftProcess(t *testing.T) {
	if os.Getenv("CAIRN_FSM_CHILD") == "1" {
		runUnknownTypeChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUnknownTypeStopsRaftProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "CAIRN_FSM_CHILD=1")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("child did not stop within 60s:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Success() {
		t.Fatalf("child exited with %v, want a crash:\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "unknown message type 77") || !strings.Contains(text, "stopping rather than diverging") {
		t.Fatalf("child's output does not explain the stop:\n%s", text)
	}
	if strings.Contains(text, "CHILD: applied after unknown") {
		t.Fatalf("child applied an entry after the unknown one:\n%s", text)
	}
}

func runUnknownTypeChild() {
	fail := func(format string, args ...any) {
		fmt.Printf("CHILD: "+format+"\n", args...)
		os.Exit(3)
	}
	f := New(nil)
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.LogLevel = "ERROR"
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("n1")
	r, err := raft.NewRaft(conf, f, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		fail("new raft: %v", err)
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: trans.LocalAddr()}}}).Error(); err != nil {
		fail("bootstrap: %v", err)
	}
	select {
	case <-r.LeaderCh():
	case <-time.After(20 * time.Second):
		fail("no leadership")
	}
	set := func(key string) []byte {
		b, err := structs.Encode(structs.KVSRequestType, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key}})
		if err != nil {
			fail("encode: %v", err)
		}
		return b
	}
	if err := r.Apply(set("a"), time.Second).Error(); err != nil {
		fail("apply known: %v", err)
	}
	// The panic on raft's FSM goroutine ends this process here.
	_ = r.Apply([]byte{byte(newerType), 1}, time.Second).Error()
	if err := r.Apply(set("b"), time.Second).Error(); err == nil {
		fail("applied after unknown")
	}
	fail("still running after an unknown entry")
}
