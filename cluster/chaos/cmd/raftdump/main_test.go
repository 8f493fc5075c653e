package main

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/raftstore"
	"github.com/cairnd/cairn/cluster/structs"
)

// writeLog creates dir/raft holding cmds at indexes 1.. in term 1.
func writeLog(t *testing.T, dir string, cmds ...[]byte) {
	t.Helper()
	st, err := raftstore.Open(filepath.Join(dir, "raft"), raftstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if err := st.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func encode(t *testing.T, typ structs.MessageType, msg any) []byte {
	t.Helper()
	b, err := structs.Encode(typ, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDumpDecodesAndLeavesOriginal(t *testing.T) {
	reg := encode(t, structs.RegisterRequestType, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{ID: "web-1", Service: "web"}})
	dereg := encode(t, structs.DeregisterRequestType, &structs.DeregisterRequest{Node: "n1", ServiceID: "web-1"})
	a, b := t.TempDir(), t.TempDir()
	writeLog(t, a, reg, dereg)
	writeLog(t, b, reg, reg)

	got, first, last, err := dump(a, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{
		1: "1 LogCommand register node=n1 svc=web-1",
		2: "1 LogCommand deregister node=n1 svc=web-1 check=",
	}
	if first != 1 || last != 2 || len(got) != 2 || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("dump = %d..%d %v, want 1..2 %v", first, last, got, want)
	}
	other, _, _, err := dump(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if other[1] != got[1] || other[2] == got[2] {
		t.Fatalf("logs should agree at 1 and differ at 2: %v vs %v", got, other)
	}
	// The original is still openable and unchanged: dump worked on a copy
	// (an open store holds Pebble's LOCK, so opening again would fail if
	// dump had left it open, too).
	st, err := raftstore.Open(filepath.Join(a, "raft"), raftstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if l, _ := st.LastIndex(); l != 2 {
		t.Fatalf("original last index %d, want 2", l)
	}
}
