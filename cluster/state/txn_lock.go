package state

import (
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// txnLock runs a lock or unlock op on the sessions' lock functions
// (session.go). Lock-delay is the leader's to check before proposing, as
// for ?acquire (see cluster/server). Callers hold mu and saved the key.
func (s *Store) txnLock(idx uint64, op *structs.TxnKVOp) ([]structs.TxnResult, error) {
	e := &op.DirEnt
	var (
		ok  bool
		err error
	)
	if op.Verb == structs.KVLock {
		ok, err = s.kvsLock(idx, e)
	} else {
		ok, err = s.kvsUnlock(idx, e)
	}
	switch {
	case err != nil:
		return nil, err
	case !ok && op.Verb == structs.KVLock:
		return nil, fmt.Errorf("failed to lock key %q, lock is already held", e.Key)
	case !ok:
		return nil, fmt.Errorf("failed to unlock key %q, lock isn't held, or is held by another session", e.Key)
	}
	return withoutValue(s.kvs[e.Key]), nil
}

// relock moves key's entry in the session lock index from the holder of
// cur to the holder of prev, when a rollback puts prev back. Callers hold
// mu.
func (s *Store) relock(key string, cur, prev *structs.DirEntry) {
	if cur != nil && cur.Session != "" {
		s.unindexLock(cur.Session, key)
	}
	if prev != nil && prev.Session != "" {
		s.indexLock(prev.Session, key)
	}
}
