package cache

import (
	"context"
	"testing"
	"unsafe"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
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

// TestEntrySize: what a client agent holds per cached name stays in its
// size class: an entry (128 bytes, with its hash-chain link), a value
// (48, the rarer kinds' fields behind one pointer) and each instance (144:
// only what an answer shows, resolver.Instance).
func TestEntrySize(t *testing.T) {
	for _, c := range []struct {
		what      string
		size, max uintptr
	}{
		{"entry", unsafe.Sizeof(entry{}), 128},
		{"value", unsafe.Sizeof(value{}), 48},
		{"instance", unsafe.Sizeof(resolver.Instance{}), 144},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, want at most %d", c.what, c.size, c.max)
		}
	}
}

// TestAppendInstancesShares: decoded strings equal to one held already
// (service address = node address, the agent's datacenter) are shared,
// not kept twice per cached name; different ones are kept as they are.
func TestAppendInstancesShares(t *testing.T) {
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	// clone gives each decoded field its own bytes, as the decoder does.
	clone := func(s string) string { return string([]byte(s)) }
	dc := "dc1"
	nodes := []structs.CheckServiceNode{
		{Node: &structs.Node{Node: "n1", Address: "10.0.0.1", Datacenter: clone(dc)},
			Service: &structs.NodeService{ID: clone("web"), Service: "web", Address: clone("10.0.0.1"), Port: 80}},
		{Node: &structs.Node{Node: "n2", Address: "10.0.0.2", Datacenter: "dc2"},
			Service: &structs.NodeService{ID: "web-2", Service: "web", Address: "10.0.9.9", Port: 81}},
	}
	got := appendInstances(nil, nodes, dc)
	if len(got) != 2 {
		t.Fatalf("got %d instances, want 2", len(got))
	}
	a, b := got[0], got[1]
	if !same(a.Address, a.Node.Address) || !same(a.Node.Datacenter, dc) {
		t.Errorf("equal strings not shared: address %q/%q dc %q", a.Address, a.Node.Address, a.Node.Datacenter)
	}
	if b.Address != "10.0.9.9" || b.Node.Datacenter != "dc2" || b.Port != 81 {
		t.Errorf("distinct strings changed: %+v", b)
	}
	if a.Address != "10.0.0.1" || a.Node.Datacenter != "dc1" || a.Port != 80 {
		t.Errorf("shared strings changed: %+v", a)
	}
}

// TestEntryKeyOwnsItsStrings: an entry's key does not keep the asker's
// string alive: the resolver's service name and tag are slices of the
// whole question name, which a cached name would otherwise hold for as
// long as it lives.
func TestEntryKeyOwnsItsStrings(t *testing.T) {
	tier := newFakeTier()
	c := newTestCatalog(t, tier)
	qname := "primary.web.service.consul."
	tag, service := qname[:len("primary")], qname[len("primary."):len("primary.web")]
	if _, err := c.ServiceNodes(context.Background(), "", service, tag, false, nil); err != nil {
		t.Fatal(err)
	}
	k := key{dc: c.cfg.Datacenter, kind: kindService, name: service, tag: tag}
	s, h := c.locate(&k)
	s.mu.RLock()
	e := s.find(h, &k)
	s.mu.RUnlock()
	if e == nil {
		t.Fatal("no entry for web/primary")
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(qname)))
	within := func(v string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
		return p >= lo && p < lo+uintptr(len(qname))
	}
	if within(e.key.name) || within(e.key.tag) {
		t.Fatalf("entry key %q/%q points into the question name %q", e.key.name, e.key.tag, qname)
	}
}
