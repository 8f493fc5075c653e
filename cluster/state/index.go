package state

import "strings"

// changes collects what one write changed, for per-key indexes and
// watchers. It lives in the Store (guarded by mu) and is reused, so a write
// allocates nothing for it once warm. Names may repeat.
type changes struct {
	services []string
	nodes    []string
	keys     []string
}

func (c *changes) empty() bool {
	return len(c.services) == 0 && len(c.nodes) == 0 && len(c.keys) == 0
}

func (c *changes) reset() {
	clear(c.services)
	clear(c.nodes)
	clear(c.keys)
	c.services, c.nodes, c.keys = c.services[:0], c.nodes[:0], c.keys[:0]
}

// touchNode records a change to nr itself (row, a service or a check).
func (s *Store) touchNode(nr *nodeRecord) {
	s.pending.nodes = append(s.pending.nodes, nr.node.Node)
}

// touchService records a change to an instance of service name.
func (s *Store) touchService(name string) {
	s.pending.services = append(s.pending.services, name)
}

// touchHosted records a change every service on nr sees: its node row or
// a node-level check.
func (s *Store) touchHosted(nr *nodeRecord) {
	for _, sr := range nr.services {
		s.touchService(sr.svc.Service)
	}
}

// touchCheck records a change to a check of serviceID ("" = node-level).
func (s *Store) touchCheck(nr *nodeRecord, serviceID string) {
	s.touchNode(nr)
	if serviceID == "" {
		s.touchHosted(nr)
	} else if sr := nr.services[serviceID]; sr != nil {
		s.touchService(sr.svc.Service)
	}
}

// commit ends a write at idx under mu: it moves the indexes of the tables
// in m and of every touched service, node and KV directory, then wakes
// their watchers. A write that changed nothing costs nothing here.
func (s *Store) commit(m tableMask, idx uint64) {
	c := &s.pending
	if m == 0 && c.empty() {
		return
	}
	for t := Table(0); t < numTables; t++ {
		if m&(1<<t) != 0 {
			s.tableIndex[t] = max(s.tableIndex[t], idx)
		}
	}
	for _, name := range c.services {
		if len(s.byService[name]) == 0 {
			delete(s.svcIndex, name)
			s.svcGone = idx
		} else {
			s.svcIndex[name] = idx
		}
	}
	for _, name := range c.nodes {
		if s.nodes[name] == nil {
			delete(s.nodeIndex, name)
			s.nodeGone = idx
		} else {
			s.nodeIndex[name] = idx
		}
	}
	s.notify(m, c)
	if s.hook != nil && (len(c.services) > 0 || len(c.nodes) > 0) {
		s.hook(idx, c.services, c.nodes)
	}
	c.reset()
}

// CommitHook is told, after every write that changed a service or a node,
// the write's index and the names of the services and nodes it touched
// (names may repeat; the slices are only valid during the call). It runs
// under the Store's write lock, in apply order: it must not block and must
// not read the Store. The subscription publisher (cluster/stream) is one.
type CommitHook func(idx uint64, services, nodes []string)

// SetCommitHook installs h (nil removes it). Set it before writes start,
// or from the writer's goroutine.
func (s *Store) SetCommitHook(h CommitHook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// serviceIndex is the index a read of service name reports. Callers hold mu.
func (s *Store) serviceIndex(name string) uint64 {
	idx, ok := s.svcIndex[name]
	if !ok && len(s.byService[name]) == 0 {
		idx = s.svcGone
	}
	return max(idx, s.floor, 1)
}

// nodeIndexOf is the index a read of node name reports. Callers hold mu.
func (s *Store) nodeIndexOf(name string) uint64 {
	idx, ok := s.nodeIndex[name]
	if !ok && s.nodes[name] == nil {
		idx = s.nodeGone
	}
	return max(idx, s.floor, 1)
}

// kvDir returns the directory of prefix p: p cut after its last '/' ("" if
// none). Every key starting with p has it as one of its directories.
func kvDir(p string) string {
	return p[:strings.LastIndexByte(p, '/')+1]
}

// kvDeleteIndex returns an index at least that of the last delete of a key
// starting with prefix: the entry of prefix's directory or, when that
// directory holds no keys and so has no entry, of its nearest recorded
// ancestor. Callers hold mu.
func (s *Store) kvDeleteIndex(prefix string) uint64 {
	d := kvDir(prefix)
	for {
		if idx, ok := s.kvDeleted[d]; ok {
			return idx
		}
		if d == "" {
			return 0
		}
		d = kvDir(d[:len(d)-1])
	}
}

// kvDirs calls fn with each directory of key ("a/", "a/b/" for "a/b/c";
// a key ending in '/' is its own last directory), shortest first.
func kvDirs(key string, fn func(dir string)) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			fn(key[:i+1])
		}
	}
}

// recordKVAdd gives each directory that key, just inserted, brings into
// existence the delete index it inherits from its nearest recorded
// ancestor, so later deletes elsewhere do not reach it. Callers hold mu.
func (s *Store) recordKVAdd(key string) {
	kvDirs(key, func(d string) {
		if _, ok := s.kvDeleted[d]; !ok {
			s.kvDeleted[d] = s.kvDeleteIndex(d)
		}
	})
}

// recordKVDelete notes that key was removed at idx: "" and every directory
// of key that still holds keys take idx; the entries of directories left
// empty are dropped, as their nearest surviving ancestor now holds an index
// at least theirs. So the map holds the live directories and "", no more.
// Callers hold mu and have removed key from kvKeys.
func (s *Store) recordKVDelete(idx uint64, key string) {
	s.kvDeleted[""] = idx
	kvDirs(key, func(d string) {
		if s.kvKeys.hasPrefix(d) {
			s.kvDeleted[d] = idx
		} else {
			delete(s.kvDeleted, d)
		}
	})
}
