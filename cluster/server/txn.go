package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// registerTxn serves transactions: Txn.Apply (one Raft entry, all or
// nothing) and Txn.Read (reads and checks only, served from a server's
// state under the request's consistency mode, no Raft entry).
func (s *Server) registerTxn() {
	handle(s, structs.MethodTxnApply, func(ctx context.Context, a *structs.TxnRequest, r *structs.TxnResponse) error {
		return s.applyTxn(ctx, a, r)
	})
	handle(s, structs.MethodTxnRead, func(ctx context.Context, a *structs.TxnReadRequest, r *structs.TxnReadResponse) error {
		if err := a.Validate(); err != nil {
			return err
		}
		q := a.QueryOptions
		q.MinQueryIndex = 0 // a transaction never blocks (Consul's)
		return s.read(ctx, structs.MethodTxnRead, a.Datacenter, &q, &r.QueryMeta, a, r, state.KVPrefixKey(""), func(st *state.Store) (uint64, error) {
			idx, results, errs := st.TxnRead(a.Ops)
			r.Results, r.Errors = results, errs
			return idx, nil
		})
	})
}

// applyTxn is write (forward.go) for a transaction, whose FSM answer is a
// *structs.TxnResponse rather than a bool: it goes to the leader at most
// once under the same rules.
func (s *Server) applyTxn(ctx context.Context, a *structs.TxnRequest, r *structs.TxnResponse) error {
	if err := a.Validate(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if done, err := s.forward(ctx, structs.MethodTxnApply, a.Datacenter, nil, a, r); done {
			return err
		}
		if errs := s.txnLockDelays(a.Ops); errs != nil {
			*r = structs.TxnResponse{Errors: errs}
			return nil
		}
		ep := s.epoch.Load()
		resp, _, err := s.apply(structs.TxnRequestType, a)
		if errors.Is(err, structs.ErrNotLeader) && attempt < maxApplyAttempts {
			if !awaitNextLeader(ctx, ep) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		out, ok := resp.(*structs.TxnResponse)
		if !ok {
			return errors.New("server: transaction applied with no response")
		}
		*r = *out
		return nil
	}
}

// txnLockDelays fails every lock op on a key still in its lock-delay.
// Lock-delays run on each server's clock, so only the leader may judge
// them, before the entry is proposed (Consul's kvsPreApply); a
// transaction with any such op is not proposed at all.
func (s *Server) txnLockDelays(ops []structs.TxnOp) []structs.TxnError {
	var errs []structs.TxnError
	now := time.Now()
	st := s.State()
	for i, op := range ops {
		if op.KV != nil && op.KV.Verb == structs.KVLock && now.Before(st.KVSLockDelay(op.KV.DirEnt.Key)) {
			errs = append(errs, structs.TxnError{OpIndex: i, What: fmt.Sprintf("failed to lock key %q due to lock delay", op.KV.DirEnt.Key)})
		}
	}
	return errs
}
