package http

import (
	"encoding/base64"
	"fmt"
	nethttp "net/http"
	"strconv"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// MaxTxnBody is Consul's txn_max_req_len default (its kv_max_value_size,
// 512 KiB): a transaction carries at most what one KV value may.
const MaxTxnBody = 512 * 1024

// txnKVOpJSON is one KV op as Consul's API sends it (api.KVTxnOp).
type txnKVOpJSON struct {
	Verb    string
	Key     string
	Value   base64Value
	Flags   uint64
	Index   uint64
	Session string
	// Namespace and Partition are Consul Enterprise's; only the default
	// (empty or "default") is accepted.
	Namespace string
	Partition string
}

// txnOpJSON is one op of a /v1/txn body (api.TxnOp). The official client
// sends every field, null when unused; Cairn has only KV ops.
type txnOpJSON struct {
	KV      *txnKVOpJSON
	Node    any
	Service any
	Check   any
}

// base64Value is a JSON base64 string (encoding/json's []byte form).
type base64Value []byte

// UnmarshalText decodes standard base64.
func (v *base64Value) UnmarshalText(b []byte) error {
	out, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("not base64: %v", err)
	}
	*v = out
	return nil
}

// decodeTxn parses a /v1/txn body into ops: the JSON must decode strictly
// (400 naming the field, "[3].KV.Flags"), hold at most MaxTxnOps ops (413
// as Consul) and pass structs.ValidateTxnOps (400 naming the op).
func decodeTxn(body []byte) ([]structs.TxnOp, error) {
	if len(body) == 0 {
		return nil, badRequest("Request decode failed: empty body")
	}
	if err := invalidUTF8(body); err != nil {
		return nil, err
	}
	var in []txnOpJSON
	if err := config.DecodeStrict(body, &in); err != nil {
		return nil, badRequest("Failed to parse body: %v", err)
	}
	if len(in) > structs.MaxTxnOps {
		return nil, &httpError{code: nethttp.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(in), structs.MaxTxnOps)}
	}
	ops := make([]structs.TxnOp, len(in))
	for i, op := range in {
		name := "Ops[" + strconv.Itoa(i) + "]"
		switch {
		case op.Node != nil, op.Service != nil, op.Check != nil:
			return nil, badRequest("%s: only KV operations are supported (Cairn's catalog has no transactions)", name)
		case op.KV == nil:
			return nil, badRequest("%s: no KV operation", name)
		}
		kv := op.KV
		for _, f := range []struct{ field, v string }{{"Namespace", kv.Namespace}, {"Partition", kv.Partition}} {
			if f.v != "" && f.v != "default" {
				return nil, badRequest("%s.KV.%s: %q is not supported: Cairn has only the default", name, f.field, f.v)
			}
		}
		ops[i].KV = &structs.TxnKVOp{
			Verb: structs.KVOp(kv.Verb),
			DirEnt: structs.DirEntry{
				Key: kv.Key, Value: []byte(kv.Value), Flags: kv.Flags,
				ModifyIndex: kv.Index, Session: kv.Session,
			},
		}
	}
	if err := structs.ValidateTxnOps(ops); err != nil {
		return nil, badRequest("%v", err)
	}
	return ops, nil
}

// txn serves PUT /v1/txn: 200 with Results when every op succeeded, 409
// with Errors (and nothing applied) when any failed, as Consul. A
// transaction of reads and checks only runs under the request's
// consistency mode without a Raft entry, and reports X-Consul-Index.
func (a *handler) txn(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	body, err := readBody(r, MaxTxnBody)
	if err != nil {
		return err
	}
	ops, err := decodeTxn(body)
	if err != nil {
		return err
	}
	var out structs.TxnResponse
	if structs.IsTxnRead(ops) {
		args := structs.TxnReadRequest{Ops: ops}
		if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
			return err
		}
		var reply structs.TxnReadResponse
		if err := a.b.RPC(r.Context(), structs.MethodTxnRead, &args, &reply); err != nil {
			return err
		}
		setQueryMeta(w, &reply.QueryMeta)
		out = reply.TxnResponse
	} else {
		args := structs.TxnRequest{Datacenter: a.datacenter(r.URL.Query()), Ops: ops}
		if err := a.b.RPC(r.Context(), structs.MethodTxnApply, &args, &out); err != nil {
			return err
		}
	}
	if len(out.Errors) > 0 {
		out.Results = nil
		return writeJSONStatus(w, r, nethttp.StatusConflict, &out)
	}
	return writeJSON(w, r, &out)
}
