package state

import "fmt"

// Tombstones (Consul's graveyard): a deleted key leaves a tombstone holding
// the index of its delete, so reads of the key or of a prefix above it
// report an index past the delete even though nothing is left to show. A
// tombstone goes when its key is written again (the entry's ModifyIndex is
// higher) or when the leader reaps it (ReapTombstones, a Raft entry). Reads
// report at least kvReaped, the highest index of a reaped tombstone, so no
// read's index ever goes back when a tombstone goes.

// tombIndex returns the highest tombstone index under prefix. Callers hold
// mu.
func (s *Store) tombIndex(prefix string) uint64 {
	if prefix == "" {
		return s.tombMax
	}
	var m uint64
	s.tombKeys.ascendPrefix(prefix, func(k string) bool {
		m = max(m, s.tombs[k])
		return true
	})
	return m
}

// kvGoneIndex is the index a Get of key, absent, reports: its tombstone's,
// or (none left) at least that of any reaped one. Callers hold mu.
func (s *Store) kvGoneIndex(key string) uint64 {
	return max(s.tombs[key], s.kvReaped, s.floor, 1)
}

// LastTombstoneIndex returns an index at least that of every tombstone in
// the Store (0 if none was ever made). The leader's reaper notes it with
// the time and, a TTL later, reaps up to it (see cluster/server).
func (s *Store) LastTombstoneIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tombMax
}

// Tombstones returns how many tombstones the Store holds.
func (s *Store) Tombstones() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tombs)
}

// ReapTombstones removes, at idx, every tombstone whose index is at most
// bound. Every replica removes the same set, whatever its clock: the bound
// is an index, chosen by the leader. It moves the KV table index (so a
// restored snapshot's floor covers kvReaped) but no key's: nothing a read
// returns changed, so no KV watcher wakes.
func (s *Store) ReapTombstones(idx, bound uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var doomed []string
	for k, ti := range s.tombs {
		if ti <= bound {
			doomed = append(doomed, k)
			s.kvReaped = max(s.kvReaped, ti)
		}
	}
	for _, k := range doomed {
		delete(s.tombs, k)
		s.tombKeys.remove(k)
	}
	if len(doomed) > 0 {
		s.commit(maskKVS, idx)
	}
	return len(doomed)
}

// tombstoneRecord is a tombstone in the snapshot stream.
type tombstoneRecord struct {
	Key   string
	Index uint64
}

func (s *Store) restoreTombstone(t *tombstoneRecord) error {
	if t.Key == "" || t.Index == 0 {
		return errBadTombstone(t.Key)
	}
	if _, dup := s.tombs[t.Key]; dup || s.kvs[t.Key] != nil {
		return errBadTombstone(t.Key)
	}
	s.tombs[t.Key] = t.Index
	s.tombKeys.insert(t.Key)
	s.tombMax = max(s.tombMax, t.Index)
	return nil
}

func errBadTombstone(key string) error {
	return fmt.Errorf("bad or duplicate tombstone %q", key)
}
