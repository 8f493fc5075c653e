package cache

import (
	"testing"
	"unsafe"
)

// TestShardHashChains: entries whose keys share a 64-bit hash (forced
// here; maphash collisions are too rare to meet) are found, added and
// dropped by key, in any order, and the shard is empty after the last.
func TestShardHashChains(t *testing.T) {
	keys := []key{
		{dc: "dc1", name: "web", kind: kindService},
		{dc: "dc1", name: "web", kind: kindService, passing: true},
		{dc: "dc1", name: "web", tag: "v2", kind: kindService},
		{dc: "dc2", name: "web", kind: kindService},
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}} {
		s := &shard{m: map[uint64]*entry{}}
		const h = 42
		es := make([]*entry, len(keys))
		for i := range keys {
			es[i] = &entry{key: keys[i]}
			s.add(h, es[i])
		}
		left := map[int]bool{0: true, 1: true, 2: true, 3: true}
		for _, i := range order {
			for j := range keys {
				if got, want := s.find(h, &keys[j]), es[j]; left[j] && got != want || !left[j] && got != nil {
					t.Fatalf("order %v, after dropping %v: find(%+v) = %p, want %p (present %v)", order, left, keys[j], got, want, left[j])
				}
			}
			if !s.drop(h, es[i]) {
				t.Fatalf("order %v: drop of present %+v reported absent", order, keys[i])
			}
			if s.drop(h, es[i]) {
				t.Fatalf("order %v: second drop of %+v reported present", order, keys[i])
			}
			delete(left, i)
			n := 0
			s.each(func(*entry) { n++ })
			if n != len(left) {
				t.Fatalf("order %v: each visits %d entries, want %d", order, n, len(left))
			}
		}
		if len(s.m) != 0 {
			t.Fatalf("order %v: shard map keeps %d slots after every drop", order, len(s.m))
		}
	}
	// Other hashes are other slots: a key is not found under a wrong hash.
	s := &shard{m: map[uint64]*entry{}}
	e := &entry{key: keys[0]}
	s.add(1, e)
	if s.find(2, &keys[0]) != nil || s.drop(2, e) {
		t.Fatal("entry found or dropped under another hash")
	}
}

// TestEntrySize: an entry (one per cached name) stays in the 144-byte
// size class with its hash-chain link.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 144 {
		t.Fatalf("entry is %d bytes, want at most 144", n)
	}
}
