package structs

import (
	"fmt"
	"strconv"
)

// Raft log types of transactions and tombstone reaping (allocated in the
// common brief: 3 is the session type).
const (
	TxnRequestType MessageType = 4
	// TombstoneRequestType reaps KV tombstones. A server that predates
	// tombstones holds none, so it may skip the entry: the leader sends it
	// with IgnoreUnknownTypeFlag.
	TombstoneRequestType MessageType = 5
)

// RPC methods of transactions.
const (
	MethodTxnApply = "Txn.Apply" // TxnRequest → TxnResponse (one Raft entry)
	MethodTxnRead  = "Txn.Read"  // TxnReadRequest → TxnReadResponse (no Raft)
)

// KV verbs only a transaction takes (set, cas, delete, delete-cas and
// delete-tree are KVOp's too; lock and unlock are session.go's KVLock and
// KVUnlock: ?acquire and ?release inside a transaction).
const (
	KVGet            KVOp = "get"
	KVGetTree        KVOp = "get-tree"
	KVCheckIndex     KVOp = "check-index"
	KVCheckSession   KVOp = "check-session"
	KVCheckNotExists KVOp = "check-not-exists"
)

// MaxTxnOps is Consul's cap on the operations of one transaction
// (agent/txn_endpoint.go maxTxnOps): enough for any real multi-key update,
// and it bounds the work one Raft entry makes every replica do.
const MaxTxnOps = 64

// TxnKVOp is one KV operation of a transaction. DirEnt.ModifyIndex is the
// index check-index, cas and delete-cas compare; DirEnt.Session is the
// session of lock, unlock and check-session.
type TxnKVOp struct {
	Verb   KVOp
	DirEnt DirEntry
}

// TxnOp is one operation of a transaction. Only KV operations exist in
// Cairn; Consul's Node, Service and Check operations are refused by the
// HTTP API.
type TxnOp struct {
	KV *TxnKVOp
}

// TxnRequest is a transaction with at least one write: one Raft entry,
// applied all or nothing.
type TxnRequest struct {
	Datacenter string
	Ops        []TxnOp
}

// TxnReadRequest is a transaction of reads and checks only, served from a
// server's state under QueryOptions' consistency mode, without Raft.
type TxnReadRequest struct {
	Datacenter string
	Ops        []TxnOp
	QueryOptions
}

// TxnResult is the result of one operation, as Consul's JSON shows it.
type TxnResult struct {
	KV *DirEntry `json:"KV,omitempty"`
}

// TxnError names an operation that failed, by its index in the request.
type TxnError struct {
	OpIndex int    `json:"OpIndex"`
	What    string `json:"What"`
}

func (e TxnError) Error() string { return fmt.Sprintf("op %d: %s", e.OpIndex, e.What) }

// TxnResponse is the outcome of a transaction: Results when it applied,
// Errors (and no Results) when any operation failed and nothing applied.
type TxnResponse struct {
	Results []TxnResult `json:"Results"`
	Errors  []TxnError  `json:"Errors"`
}

// TxnReadResponse is a read-only transaction's outcome with its meta.
type TxnReadResponse struct {
	TxnResponse
	QueryMeta
}

// IsTxnRead reports whether every op of ops only reads (get, get-tree and
// the checks), so the transaction can be served without Raft.
func IsTxnRead(ops []TxnOp) bool {
	for _, op := range ops {
		if op.KV == nil {
			return false
		}
		switch op.KV.Verb {
		case KVGet, KVGetTree, KVCheckIndex, KVCheckSession, KVCheckNotExists:
		default:
			return false
		}
	}
	return true
}

// ValidateTxnOps checks a transaction's shape: 1..MaxTxnOps operations,
// each a KV op with a known verb, a key where the verb needs one (all but
// the -tree verbs), a session for lock, unlock and check-session, and the
// limits of KVSRequest.Validate. Errors name the op ("Ops[3].KV.Verb").
func ValidateTxnOps(ops []TxnOp) error {
	if len(ops) == 0 {
		return &FieldError{"Ops", "no operations"}
	}
	if len(ops) > MaxTxnOps {
		return &FieldError{"Ops", fmt.Sprintf("%d operations, at most %d allowed", len(ops), MaxTxnOps)}
	}
	for i, op := range ops {
		field := "Ops[" + strconv.Itoa(i) + "].KV"
		if op.KV == nil {
			return &FieldError{"Ops[" + strconv.Itoa(i) + "]", "not a KV operation"}
		}
		e := &op.KV.DirEnt
		switch op.KV.Verb {
		case KVSet, KVCAS, KVDelete, KVDeleteCAS, KVGet, KVCheckIndex, KVCheckNotExists:
			if e.Key == "" {
				return &FieldError{field + ".Key", "missing key for verb " + strconv.Quote(string(op.KV.Verb))}
			}
		case KVLock, KVUnlock, KVCheckSession:
			if e.Key == "" {
				return &FieldError{field + ".Key", "missing key for verb " + strconv.Quote(string(op.KV.Verb))}
			}
			if e.Session == "" {
				return &FieldError{field + ".Session", "missing session for verb " + strconv.Quote(string(op.KV.Verb))}
			}
		case KVDeleteTree, KVGetTree:
		default:
			return &FieldError{field + ".Verb", "unknown KV verb " + strconv.Quote(string(op.KV.Verb))}
		}
		req := KVSRequest{DirEnt: *e}
		if err := req.Validate(); err != nil {
			fe, ok := err.(*FieldError)
			if !ok {
				return err
			}
			return &FieldError{field + "." + fe.Field, fe.Reason}
		}
	}
	return nil
}

// Validate checks a write transaction (see ValidateTxnOps).
func (r *TxnRequest) Validate() error {
	if err := ValidateName("Datacenter", r.Datacenter); err != nil {
		return err
	}
	return ValidateTxnOps(r.Ops)
}

// Validate checks a read-only transaction: its shape, and that it only
// reads.
func (r *TxnReadRequest) Validate() error {
	if err := ValidateName("Datacenter", r.Datacenter); err != nil {
		return err
	}
	if err := ValidateTxnOps(r.Ops); err != nil {
		return err
	}
	if !IsTxnRead(r.Ops) {
		return &FieldError{"Ops", "a read transaction holds a write"}
	}
	return nil
}

// TombstoneOp names what a TombstoneRequest does.
type TombstoneOp string

// TombstoneReap removes tombstones.
const TombstoneReap TombstoneOp = "reap"

// TombstoneRequest reaps every KV tombstone whose index is at most
// ReapIndex (Consul's). The leader sends it; followers apply it by index,
// never by their own clock.
type TombstoneRequest struct {
	Datacenter string
	Op         TombstoneOp
	ReapIndex  uint64
}
