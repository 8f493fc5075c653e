package fsm

import (
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestApplyTxnAndReap: a transaction entry answers its results, or its
// errors with nothing applied; a reap entry, flagged ignorable or not,
// removes tombstones up to its bound; an undecodable body of either type
// is rejected (every replica alike), never a panic.
func TestApplyTxnAndReap(t *testing.T) {
	f := New(nil)
	set := func(key string) structs.TxnOp {
		return structs.TxnOp{KV: &structs.TxnKVOp{Verb: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: []byte("v")}}}
	}
	resp, ok := f.Apply(cmd(1, encode(t, structs.TxnRequestType, &structs.TxnRequest{Ops: []structs.TxnOp{set("a"), set("b")}}))).(*structs.TxnResponse)
	if !ok || len(resp.Results) != 2 || resp.Errors != nil {
		t.Fatalf("txn answer %+v", resp)
	}
	bad := &structs.TxnRequest{Ops: []structs.TxnOp{
		{KV: &structs.TxnKVOp{Verb: structs.KVDelete, DirEnt: structs.DirEntry{Key: "a"}}},
		{KV: &structs.TxnKVOp{Verb: structs.KVCheckIndex, DirEnt: structs.DirEntry{Key: "b", ModifyIndex: 99}}},
	}}
	resp, ok = f.Apply(cmd(2, encode(t, structs.TxnRequestType, bad))).(*structs.TxnResponse)
	if !ok || resp.Results != nil || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Fatalf("failing txn answer %+v", resp)
	}
	if _, e := f.State().KVSGet("a"); e == nil {
		t.Fatal("failing txn deleted a")
	}
	// An invalid transaction (no ops) is refused by the FSM too.
	if err, _ := f.Apply(cmd(3, encode(t, structs.TxnRequestType, &structs.TxnRequest{}))).(error); err == nil {
		t.Fatal("empty txn applied")
	}
	f.Apply(cmd(4, kvs(t, structs.KVDelete, "a", "", 0)))
	f.Apply(cmd(5, kvs(t, structs.KVDelete, "b", "", 0)))
	reap := func(idx, bound uint64, flag structs.MessageType) any {
		return f.Apply(cmd(idx, encode(t, structs.TombstoneRequestType|flag, &structs.TombstoneRequest{Op: structs.TombstoneReap, ReapIndex: bound})))
	}
	if r := reap(6, 4, structs.IgnoreUnknownTypeFlag); r != nil || f.State().Tombstones() != 1 {
		t.Fatalf("flagged reap to 4: %v, %d tombstones left", r, f.State().Tombstones())
	}
	if r := reap(7, 5, 0); r != nil || f.State().Tombstones() != 0 {
		t.Fatalf("reap to 5: %v, %d tombstones left", r, f.State().Tombstones())
	}
	for _, mt := range []structs.MessageType{structs.TxnRequestType, structs.TombstoneRequestType} {
		if err, _ := f.Apply(cmd(8, []byte{byte(mt), 0xc1})).(error); err == nil {
			t.Fatalf("type %d: garbage body accepted", mt)
		}
	}
	if err, _ := f.Apply(cmd(9, encode(t, structs.TombstoneRequestType, &structs.TombstoneRequest{Op: "burn"}))).(error); err == nil {
		t.Fatal("unknown tombstone op accepted")
	}
}
