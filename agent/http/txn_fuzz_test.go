package http

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

// FuzzTxnDecode: the /v1/txn decoder never panics; it refuses with a 400
// or 413 and nothing else; what it accepts is 1..64 valid KV ops that
// survive a round trip through the official client's JSON shape.
func FuzzTxnDecode(f *testing.F) {
	f.Add([]byte(`[{"KV":{"Verb":"set","Key":"a","Value":"dg=="},"Node":null,"Service":null,"Check":null}]`))
	f.Add([]byte(`[{"KV":{"Verb":"cas","Key":"a","Index":7,"Flags":3}},{"KV":{"Verb":"get-tree","Key":""}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"lock","Key":"l","Session":"s"}},{"KV":{"Verb":"check-session","Key":"l","Session":"s"}}]`))
	f.Add([]byte(`[{"kv":{"verb":"delete-cas","key":"a","index":1,"namespace":"default"}}]`))
	f.Add([]byte(`[{"KV":{"Verb":"frob","Key":"a"}}]`))
	f.Add([]byte(`[{"Node":{"Verb":"set"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := decodeTxn(body)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || (he.code != 400 && he.code != 413) {
				t.Fatalf("body %q: refused with %v, want a 400 or 413", body, err)
			}
			return
		}
		if len(ops) == 0 || len(ops) > structs.MaxTxnOps {
			t.Fatalf("accepted %d ops", len(ops))
		}
		if err := structs.ValidateTxnOps(ops); err != nil {
			t.Fatalf("accepted invalid ops: %v", err)
		}
		again, err := decodeTxn(apiShape(t, ops))
		if err != nil {
			t.Fatalf("re-encoded ops refused: %v", err)
		}
		if !reflect.DeepEqual(normalise(ops), normalise(again)) {
			t.Fatalf("round trip changed the ops:\n%+v\n%+v", ops, again)
		}
	})
}

// apiShape encodes ops as consul/api's TxnOps JSON.
func apiShape(t *testing.T, ops []structs.TxnOp) []byte {
	type kvOp struct {
		Verb    string
		Key     string
		Value   []byte
		Flags   uint64
		Index   uint64
		Session string
	}
	type op struct {
		KV                   *kvOp
		Node, Service, Check any
	}
	out := make([]op, len(ops))
	for i, o := range ops {
		e := o.KV.DirEnt
		out[i].KV = &kvOp{Verb: string(o.KV.Verb), Key: e.Key, Value: e.Value, Flags: e.Flags, Index: e.ModifyIndex, Session: e.Session}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalise maps empty values to nil: JSON cannot tell them apart.
func normalise(ops []structs.TxnOp) []structs.TxnOp {
	out := make([]structs.TxnOp, len(ops))
	for i, o := range ops {
		kv := *o.KV
		if len(kv.DirEnt.Value) == 0 {
			kv.DirEnt.Value = nil
		}
		out[i].KV = &kv
	}
	return out
}
