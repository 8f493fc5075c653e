package state

import (
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// Transactions (Consul's /v1/txn, KV verbs only). Txn runs every op in
// order, each seeing the effects of the ones before it, under one hold of
// mu; if any op fails, it undoes what the others did, so the Store,
// its indexes and its watchers are as if the entry had never been applied,
// and it reports every failing op (Consul collects them all). Readers never
// see a half-applied transaction: they wait on mu.

// txnUndo remembers, for each key a transaction touched, its entry and
// tombstone from before the transaction's first change to it.
type txnUndo struct {
	saved   map[string]savedKV
	tombMax uint64
}

type savedKV struct {
	e       *structs.DirEntry
	tomb    uint64
	hasTomb bool
}

// save records key's state if this transaction has not touched it yet.
func (u *txnUndo) save(s *Store, key string) {
	if _, ok := u.saved[key]; ok {
		return
	}
	t, has := s.tombs[key]
	u.saved[key] = savedKV{e: s.kvs[key], tomb: t, hasTomb: has}
}

// rollback puts every saved key back and drops the pending changes.
// Callers hold mu.
func (s *Store) rollback(u *txnUndo) {
	for key, sv := range u.saved {
		s.relock(key, s.kvs[key], sv.e)
		if sv.e == nil {
			if s.kvs[key] != nil {
				delete(s.kvs, key)
				s.kvKeys.remove(key)
			}
		} else {
			if s.kvs[key] == nil {
				s.kvKeys.insert(key)
			}
			s.kvs[key] = sv.e
		}
		_, has := s.tombs[key]
		switch {
		case sv.hasTomb:
			if !has {
				s.tombKeys.insert(key)
			}
			s.tombs[key] = sv.tomb
		case has:
			delete(s.tombs, key)
			s.tombKeys.remove(key)
		}
	}
	s.tombMax = u.tombMax
	s.pending.reset()
}

// Txn applies ops at idx, all or nothing. It returns the ops' results, or
// (and then nothing changed) the errors of every op that failed.
func (s *Store) Txn(idx uint64, ops []structs.TxnOp) ([]structs.TxnResult, []structs.TxnError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &txnUndo{saved: make(map[string]savedKV), tombMax: s.tombMax}
	results, errs := s.txnRun(idx, ops, u)
	if len(errs) > 0 {
		s.rollback(u)
		return nil, errs
	}
	if len(s.pending.keys) > 0 {
		s.commit(maskKVS, idx)
	}
	return results, nil
}

// TxnRead runs a transaction of reads and checks (structs.IsTxnRead) and
// returns the KV table's index with its results or errors. A write verb
// fails its op.
func (s *Store) TxnRead(ops []structs.TxnOp) (uint64, []structs.TxnResult, []structs.TxnError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	results, errs := s.txnRun(0, ops, nil)
	if len(errs) > 0 {
		results = nil
	}
	return max(s.tableIndex[TableKVS], s.floor, 1), results, errs
}

// txnRun runs ops; u is nil for a read-only run. Callers hold mu (for
// writing when u is not nil).
func (s *Store) txnRun(idx uint64, ops []structs.TxnOp, u *txnUndo) ([]structs.TxnResult, []structs.TxnError) {
	var (
		results []structs.TxnResult
		errs    []structs.TxnError
	)
	for i, op := range ops {
		if op.KV == nil {
			errs = append(errs, structs.TxnError{OpIndex: i, What: "not a KV operation"})
			continue
		}
		res, err := s.txnKV(idx, op.KV, u)
		if err != nil {
			errs = append(errs, structs.TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		results = append(results, res...)
	}
	return results, errs
}

// withoutValue is the result of a write or check: the entry without its
// value, as Consul's (only get and get-tree return values).
func withoutValue(e *structs.DirEntry) []structs.TxnResult {
	c := *e
	c.Value = nil
	return []structs.TxnResult{{KV: &c}}
}

// txnKV runs one KV op. The error texts are Consul's.
func (s *Store) txnKV(idx uint64, op *structs.TxnKVOp, u *txnUndo) ([]structs.TxnResult, error) {
	e := &op.DirEnt
	key := e.Key
	cur := s.kvs[key]
	write := func() error {
		if u == nil {
			return fmt.Errorf("verb %q writes: not allowed in a read transaction", op.Verb)
		}
		u.save(s, key)
		return nil
	}
	switch op.Verb {
	case structs.KVGet:
		if cur == nil {
			return nil, fmt.Errorf("key %q doesn't exist", key)
		}
		return []structs.TxnResult{{KV: cur}}, nil
	case structs.KVGetTree:
		var out []structs.TxnResult
		s.kvKeys.ascendPrefix(key, func(k string) bool {
			out = append(out, structs.TxnResult{KV: s.kvs[k]})
			return true
		})
		return out, nil
	case structs.KVCheckIndex:
		if cur == nil {
			return nil, fmt.Errorf("failed to check index, key %q doesn't exist", key)
		}
		if cur.ModifyIndex != e.ModifyIndex {
			return nil, fmt.Errorf("failed index check for key %q, current modify index %d != %d", key, cur.ModifyIndex, e.ModifyIndex)
		}
		return withoutValue(cur), nil
	case structs.KVCheckNotExists:
		if cur != nil {
			return nil, fmt.Errorf("key %q exists", key)
		}
		return nil, nil
	case structs.KVCheckSession:
		if cur == nil {
			return nil, fmt.Errorf("failed to check session, key %q doesn't exist", key)
		}
		if cur.Session != e.Session {
			return nil, fmt.Errorf("failed session check for key %q, current session %q != %q", key, cur.Session, e.Session)
		}
		return withoutValue(cur), nil
	case structs.KVSet, structs.KVCAS:
		if err := write(); err != nil {
			return nil, err
		}
		if op.Verb == structs.KVCAS {
			ok := (e.ModifyIndex == 0 && cur == nil) || (e.ModifyIndex != 0 && cur != nil && cur.ModifyIndex == e.ModifyIndex)
			if !ok {
				return nil, fmt.Errorf("failed to set key %q, index is stale", key)
			}
		}
		s.kvsSet(idx, e)
		return withoutValue(s.kvs[key]), nil
	case structs.KVDelete:
		if err := write(); err != nil {
			return nil, err
		}
		s.kvsDelete(idx, key)
		return nil, nil
	case structs.KVDeleteCAS:
		if err := write(); err != nil {
			return nil, err
		}
		if cur != nil && cur.ModifyIndex != e.ModifyIndex {
			return nil, fmt.Errorf("failed to delete key %q, index is stale", key)
		}
		s.kvsDelete(idx, key)
		return nil, nil
	case structs.KVDeleteTree:
		if u == nil {
			return nil, fmt.Errorf("verb %q writes: not allowed in a read transaction", op.Verb)
		}
		var doomed []string
		s.kvKeys.ascendPrefix(key, func(k string) bool {
			doomed = append(doomed, k)
			return true
		})
		for _, k := range doomed {
			u.save(s, k)
			s.kvsDelete(idx, k)
		}
		return nil, nil
	case structs.KVLock, structs.KVUnlock:
		if err := write(); err != nil {
			return nil, err
		}
		return s.txnLock(idx, op)
	}
	return nil, fmt.Errorf("unknown KV verb %q", op.Verb)
}
