package state

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
	c.reset()
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

// recordKVAdd notes that key, absent until now, holds an entry again: its
// tombstone goes, superseded by the entry's higher ModifyIndex. Callers
// hold mu.
func (s *Store) recordKVAdd(key string) {
	if _, ok := s.tombs[key]; ok {
		delete(s.tombs, key)
		s.tombKeys.remove(key)
	}
}

// recordKVDelete leaves a tombstone for key, removed at idx (see
// tombstone.go). Callers hold mu and have removed key from kvKeys.
func (s *Store) recordKVDelete(idx uint64, key string) {
	if _, ok := s.tombs[key]; !ok {
		s.tombKeys.insert(key)
	}
	s.tombs[key] = idx
	s.tombMax = max(s.tombMax, idx)
}
