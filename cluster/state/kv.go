package state

import (
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

// KVSSet stores a copy of e at idx. CreateIndex is kept from an existing
// entry; Session and LockIndex belong to lock operations, so an existing
// entry's values are kept and a new entry starts unlocked, as Consul's set.
func (s *Store) KVSSet(idx uint64, e *structs.DirEntry) error {
	if e == nil || e.Key == "" {
		return ErrMissingKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kvsSet(idx, e)
	s.commit(maskKVS, idx)
	return nil
}

func (s *Store) kvsSet(idx uint64, e *structs.DirEntry) {
	ne := &structs.DirEntry{Key: e.Key, Value: e.Value, Flags: e.Flags, CreateIndex: idx, ModifyIndex: idx}
	if old := s.kvs[e.Key]; old != nil {
		ne.CreateIndex, ne.Session, ne.LockIndex = old.CreateIndex, old.Session, old.LockIndex
	} else {
		s.kvKeys.insert(e.Key)
		s.recordKVAdd(e.Key)
	}
	s.kvs[e.Key] = ne
	s.pending.keys = append(s.pending.keys, e.Key)
}

// KVSSetCAS sets e only if e.ModifyIndex is 0 and the key is absent, or
// e.ModifyIndex equals the stored entry's ModifyIndex. It reports whether
// the write happened.
func (s *Store) KVSSetCAS(idx uint64, e *structs.DirEntry) (bool, error) {
	if e == nil || e.Key == "" {
		return false, ErrMissingKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.kvs[e.Key]
	ok := (e.ModifyIndex == 0 && old == nil) || (e.ModifyIndex != 0 && old != nil && old.ModifyIndex == e.ModifyIndex)
	if ok {
		s.kvsSet(idx, e)
		s.commit(maskKVS, idx)
	}
	return ok, nil
}

// KVSDelete removes key; deleting an absent key changes nothing.
func (s *Store) KVSDelete(idx uint64, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kvsDelete(idx, key) {
		s.commit(maskKVS, idx)
	}
	return nil
}

func (s *Store) kvsDelete(idx uint64, key string) bool {
	old, ok := s.kvs[key]
	if !ok {
		return false
	}
	if old.Session != "" {
		s.unindexLock(old.Session, key)
	}
	delete(s.kvs, key)
	s.kvKeys.remove(key)
	s.recordKVDelete(idx, key)
	s.pending.keys = append(s.pending.keys, key)
	return true
}

// KVSDeleteCAS deletes key only if its ModifyIndex is cidx. As Consul's, it
// reports true when the key is already absent.
func (s *Store) KVSDeleteCAS(idx, cidx uint64, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.kvs[key]
	if old == nil || old.ModifyIndex != cidx {
		return old == nil, nil
	}
	s.kvsDelete(idx, key)
	s.commit(maskKVS, idx)
	return true, nil
}

// KVSDeleteTree removes every key starting with prefix ("" removes all).
func (s *Store) KVSDeleteTree(idx uint64, prefix string) error {
	s.mu.Lock()
	var doomed []string
	s.kvKeys.ascendPrefix(prefix, func(k string) bool {
		doomed = append(doomed, k)
		return true
	})
	for _, k := range doomed {
		s.kvsDelete(idx, k)
	}
	if len(doomed) > 0 {
		s.commit(maskKVS, idx)
	}
	s.mu.Unlock()
	return nil
}

// KVSGet returns the entry at key (nil if absent) with key's index: its
// ModifyIndex, or when absent its tombstone's (see tombstone.go).
func (s *Store) KVSGet(key string) (uint64, *structs.DirEntry) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e := s.kvs[key]; e != nil {
		return max(e.ModifyIndex, s.floor, 1), e
	}
	return s.kvGoneIndex(key), nil
}

// kvIndex is the index a read of prefix reports, given the highest
// ModifyIndex among the entries it returns: at least the last delete under
// prefix, by its tombstone or, once reaped, kvReaped (see tombstone.go).
// Callers hold mu.
func (s *Store) kvIndex(prefix string, modify uint64) uint64 {
	return max(modify, s.tombIndex(prefix), s.kvReaped, s.floor, 1)
}

// KVSList returns the entries under prefix in key order, with the
// prefix's index.
func (s *Store) KVSList(prefix string) (uint64, []*structs.DirEntry) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*structs.DirEntry
	var modify uint64
	s.kvKeys.ascendPrefix(prefix, func(k string) bool {
		e := s.kvs[k]
		modify = max(modify, e.ModifyIndex)
		out = append(out, e)
		return true
	})
	return s.kvIndex(prefix, modify), out
}

// KVSListKeys returns the keys under prefix in order. With a separator,
// keys are cut after the first sep following the prefix and deduplicated,
// so "a/b/c" under "a/" with "/" lists "a/b/" (Consul's ?keys&separator).
func (s *Store) KVSListKeys(prefix, sep string) (uint64, []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	var modify uint64
	s.kvKeys.ascendPrefix(prefix, func(k string) bool {
		modify = max(modify, s.kvs[k].ModifyIndex)
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if n := len(out); n == 0 || out[n-1] != k {
			out = append(out, k)
		}
		return true
	})
	return s.kvIndex(prefix, modify), out
}
