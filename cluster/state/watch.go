package state

import "strings"

// tableMask is a set of tables; there are 2^numTables distinct watch sets.
type tableMask uint8

const numMasks = 1 << numTables

// allTables has every table's bit: a ninth table overflows tableMask and
// fails to compile here, instead of sharing a bit silently (widen
// tableMask then; watch sets are indexed by mask, 2^numTables of them).
const allTables tableMask = 1<<numTables - 1

func maskOf(tables []Table) tableMask {
	var m tableMask
	for _, t := range tables {
		if t < numTables {
			m |= 1 << t
		}
	}
	return m
}

// keyKind says what a Key names.
type keyKind uint8

const (
	kindTables keyKind = iota
	kindService
	kindNode
	kindKVPrefix
	numKinds
)

// Key names the data a blocking read depends on: whole tables, one
// service, one node or one KV prefix. A Key is comparable, so it can be
// part of a map key.
type Key struct {
	kind   keyKind
	tables tableMask
	name   string
}

// TablesKey watches every change to any of tables.
func TablesKey(tables ...Table) Key { return Key{kind: kindTables, tables: maskOf(tables)} }

// ServiceKey watches one service: its instances, their checks and the
// nodes (rows and node-level checks) that host them.
func ServiceKey(name string) Key { return Key{kind: kindService, name: name} }

// NodeKey watches one node: its row, services and checks.
func NodeKey(name string) Key { return Key{kind: kindNode, name: name} }

// KVPrefixKey watches every key starting with prefix ("" = all). A read
// of a single key watches that key as a prefix.
func KVPrefixKey(prefix string) Key { return Key{kind: kindKVPrefix, name: prefix} }

// String renders the key for logs and test output.
func (k Key) String() string {
	switch k.kind {
	case kindService:
		return "service:" + k.name
	case kindNode:
		return "node:" + k.name
	case kindKVPrefix:
		return "kv:" + k.name
	}
	var names []string
	for t := Table(0); t < numTables; t++ {
		if k.tables&(1<<t) != 0 {
			names = append(names, t.String())
		}
	}
	return "tables:" + strings.Join(names, ",")
}

// Watch returns a channel closed on the next change to any of tables.
func (s *Store) Watch(tables ...Table) <-chan struct{} {
	return s.WatchKey(TablesKey(tables...))
}

// WatchKey returns a channel closed on the next change to the data k
// names. Channels are shared between watchers of the same key and created
// only when watched, so writes with nobody watching cost one lock. A
// channel may also close for a nearby change (see doc.go); callers re-read
// and compare indexes, as Block does.
func (s *Store) WatchKey(k Key) <-chan struct{} {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if k.kind == kindTables {
		ch := s.watches[k.tables]
		if ch == nil {
			ch = make(chan struct{})
			s.watches[k.tables] = ch
		}
		return ch
	}
	m := s.keyWatches[k.kind]
	if m == nil {
		m = make(map[string]chan struct{})
		s.keyWatches[k.kind] = m
	}
	ch := m[k.name]
	if ch == nil {
		ch = make(chan struct{})
		m[k.name] = ch
	}
	return ch
}

// notify wakes the watchers of what the write in s.pending changed: table
// sets overlapping m, the named services and nodes, and the KV prefixes of
// the changed keys.
func (s *Store) notify(m tableMask, c *changes) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if m != 0 {
		for k := range s.watches {
			if tableMask(k)&m != 0 && s.watches[k] != nil {
				close(s.watches[k])
				s.watches[k] = nil
			}
		}
	}
	wake := func(kind keyKind, name string) {
		if ch, ok := s.keyWatches[kind][name]; ok {
			close(ch)
			delete(s.keyWatches[kind], name)
		}
	}
	if len(s.keyWatches[kindService]) > 0 {
		for _, name := range c.services {
			wake(kindService, name)
		}
	}
	if len(s.keyWatches[kindNode]) > 0 {
		for _, name := range c.nodes {
			wake(kindNode, name)
		}
	}
	kv := s.keyWatches[kindKVPrefix]
	for _, key := range c.keys {
		if len(kv) == 0 {
			break
		}
		// Whichever is fewer: the watched prefixes, or the prefixes of key.
		if len(kv) <= len(key)+1 {
			for p, ch := range kv {
				if strings.HasPrefix(key, p) {
					close(ch)
					delete(kv, p)
				}
			}
			continue
		}
		for i := 0; i <= len(key); i++ {
			wake(kindKVPrefix, key[:i])
		}
	}
}
