package state

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/cairnd/cairn/cluster/structs"
)

// snapshotVersion is the version of the stream Persist writes. Restore
// rejects any other: bump it when the record layout changes.
const snapshotVersion = 1

// Record kinds of the snapshot stream. The values are on-disk format.
const (
	recNode    uint8 = 1
	recService uint8 = 2
	recCheck   uint8 = 3
	recKV      uint8 = 4
	recSession uint8 = 5
	// recTombstone (6; 5 is the session record) is a deleted key's
	// tombstone. Tombstones follow the entries so a restore can tell a
	// tombstone that shadows a live key (corrupt) from a good one.
	recTombstone uint8 = 6
	recACLPolicy uint8 = 7
	recACLToken  uint8 = 8
	recACLMeta   uint8 = 9
	// recPreparedQuery and recCoordinate: allocated 10 and 11 (kinds 5-9
	// belong to sessions, tombstones and ACLs).
	recPreparedQuery uint8 = 10
	recCoordinate    uint8 = 11
	// recEnd terminates the stream so a truncated snapshot is detected.
	recEnd uint8 = 255
)

// snapshotHeader opens the stream.
type snapshotHeader struct {
	Version      uint8
	TableIndexes []uint64
}

// serviceRecord carries a service with the node it belongs to.
type serviceRecord struct {
	Node    string
	Service *structs.NodeService
}

// Snapshot is a consistent point-in-time view of a Store. Taking one copies
// only pointers to immutable entries, so it is cheap and the Store keeps
// accepting writes while it is persisted.
type Snapshot struct {
	index    [numTables]uint64
	nodes    []*structs.Node
	services []serviceRecord
	checks   []*structs.HealthCheck
	kvs      []*structs.DirEntry
	tombs    []tombstoneRecord
	sessions []*structs.Session

	aclPolicies []*structs.ACLPolicy
	aclTokens   []*structs.ACLToken
	aclMeta     aclMeta
	queries     []*structs.PreparedQuery
	coords      []*structs.Coordinate
}

// Snapshot captures the Store's current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{
		index: s.tableIndex,
		nodes: make([]*structs.Node, 0, len(s.nodes)),
		kvs:   make([]*structs.DirEntry, 0, len(s.kvs)),
	}
	s.nodeNames.ascendPrefix("", func(name string) bool {
		nr := s.nodes[name]
		snap.nodes = append(snap.nodes, nr.node)
		for _, sr := range nr.services {
			snap.services = append(snap.services, serviceRecord{Node: name, Service: sr.svc})
		}
		for _, c := range nr.checks {
			snap.checks = append(snap.checks, c)
		}
		return true
	})
	s.kvKeys.ascendPrefix("", func(k string) bool {
		snap.kvs = append(snap.kvs, s.kvs[k])
		return true
	})
	snap.tombs = make([]tombstoneRecord, 0, len(s.tombs))
	s.tombKeys.ascendPrefix("", func(k string) bool {
		snap.tombs = append(snap.tombs, tombstoneRecord{Key: k, Index: s.tombs[k]})
		return true
	})
	for _, sess := range s.sessions {
		snap.sessions = append(snap.sessions, sess)
	}
	s.aclSnapshot(snap)
	for _, id := range slices.Sorted(maps.Keys(s.queries)) {
		snap.queries = append(snap.queries, s.queries[id])
	}
	for _, n := range slices.Sorted(maps.Keys(s.coords)) {
		snap.coords = append(snap.coords, s.coords[n])
	}
	return snap
}

// Index returns the highest table index the snapshot holds.
func (snap *Snapshot) Index() uint64 {
	return slices.Max(snap.index[:])
}

// Persist writes the snapshot to w as a versioned msgpack stream, in a
// deterministic order. Call it once; it is not safe for concurrent use.
func (snap *Snapshot) Persist(w io.Writer) error {
	return snap.persist(w, snap.index[:])
}

// persist writes the stream with indexes as the header's table indexes
// (tests write older headers with it).
func (snap *Snapshot) persist(w io.Writer, indexes []uint64) error {
	// Map iteration made the per-node order random; sort for a stable
	// stream (nodes are already in name order).
	slices.SortStableFunc(snap.services, func(a, b serviceRecord) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Service.ID, b.Service.ID)
	})
	slices.SortStableFunc(snap.checks, func(a, b *structs.HealthCheck) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.CheckID, b.CheckID)
	})
	slices.SortFunc(snap.sessions, func(a, b *structs.Session) int { return strings.Compare(a.ID, b.ID) })
	bw := bufio.NewWriter(w)
	enc := codec.NewEncoder(bw, structs.MsgpackHandle())
	put := func(kind uint8, v any) error {
		if err := enc.Encode(kind); err != nil {
			return err
		}
		if v == nil {
			return nil
		}
		return enc.Encode(v)
	}
	hdr := snapshotHeader{Version: snapshotVersion, TableIndexes: indexes}
	if err := enc.Encode(&hdr); err != nil {
		return fmt.Errorf("state: persist header: %w", err)
	}
	for _, n := range snap.nodes {
		if err := put(recNode, n); err != nil {
			return fmt.Errorf("state: persist node %s: %w", n.Node, err)
		}
	}
	for i := range snap.services {
		if err := put(recService, &snap.services[i]); err != nil {
			return fmt.Errorf("state: persist service %s/%s: %w", snap.services[i].Node, snap.services[i].Service.ID, err)
		}
	}
	for _, c := range snap.checks {
		if err := put(recCheck, c); err != nil {
			return fmt.Errorf("state: persist check %s/%s: %w", c.Node, c.CheckID, err)
		}
	}
	for _, e := range snap.kvs {
		if err := put(recKV, e); err != nil {
			return fmt.Errorf("state: persist key %s: %w", e.Key, err)
		}
	}
	for i := range snap.tombs {
		if err := put(recTombstone, &snap.tombs[i]); err != nil {
			return fmt.Errorf("state: persist tombstone %s: %w", snap.tombs[i].Key, err)
		}
	}
	for _, sess := range snap.sessions {
		if err := put(recSession, sess); err != nil {
			return fmt.Errorf("state: persist session %s: %w", sess.ID, err)
		}
	}
	for _, p := range snap.aclPolicies {
		if err := put(recACLPolicy, p); err != nil {
			return fmt.Errorf("state: persist acl policy %s: %w", p.ID, err)
		}
	}
	for _, t := range snap.aclTokens {
		if err := put(recACLToken, t); err != nil {
			return fmt.Errorf("state: persist acl token: %w", err)
		}
	}
	if snap.aclMeta != (aclMeta{}) {
		if err := put(recACLMeta, &snap.aclMeta); err != nil {
			return fmt.Errorf("state: persist acl meta: %w", err)
		}
	}
	for _, q := range snap.queries {
		if err := put(recPreparedQuery, q); err != nil {
			return fmt.Errorf("state: persist prepared query %s: %w", q.ID, err)
		}
	}
	for _, c := range snap.coords {
		if err := put(recCoordinate, c); err != nil {
			return fmt.Errorf("state: persist coordinate %s: %w", c.Node, err)
		}
	}
	if err := put(recEnd, nil); err != nil {
		return fmt.Errorf("state: persist end: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("state: persist: %w", err)
	}
	return nil
}

// Restore builds a new Store from a stream written by Persist, with every
// table index and entry index exactly as they were.
func Restore(r io.Reader) (*Store, error) {
	dec := codec.NewDecoder(bufio.NewReader(r), structs.MsgpackHandle())
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("state: restore header: %w", err)
	}
	if hdr.Version != snapshotVersion {
		return nil, fmt.Errorf("state: restore: unsupported snapshot version %d", hdr.Version)
	}
	// Tables are only ever added at the end: a snapshot of an older
	// build has fewer indexes, and its missing tables start empty.
	if len(hdr.TableIndexes) > int(numTables) || len(hdr.TableIndexes) < int(TableKVS)+1 {
		return nil, fmt.Errorf("state: restore: header has %d table indexes, want %d", len(hdr.TableIndexes), numTables)
	}
	s := New()
	copy(s.tableIndex[:], hdr.TableIndexes)
	// Per-key indexes are not in the stream: every per-key read of the new
	// Store reports at least the snapshot's index (see doc.go).
	s.floor = slices.Max(s.tableIndex[:])
	for {
		var kind uint8
		if err := dec.Decode(&kind); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("state: restore: truncated snapshot")
			}
			return nil, fmt.Errorf("state: restore: %w", err)
		}
		var err error
		switch kind {
		case recNode:
			n := new(structs.Node)
			if err = dec.Decode(n); err == nil {
				err = s.restoreNode(n)
			}
		case recService:
			var rec serviceRecord
			if err = dec.Decode(&rec); err == nil {
				err = s.restoreService(rec)
			}
		case recCheck:
			c := new(structs.HealthCheck)
			if err = dec.Decode(c); err == nil {
				err = s.restoreCheck(c)
			}
		case recKV:
			e := new(structs.DirEntry)
			if err = dec.Decode(e); err == nil {
				err = s.restoreKV(e)
			}
		case recTombstone:
			var t tombstoneRecord
			if err = dec.Decode(&t); err == nil {
				err = s.restoreTombstone(&t)
			}
		case recSession:
			sess := new(structs.Session)
			if err = dec.Decode(sess); err == nil {
				err = s.restoreSession(sess)
			}
		case recACLPolicy:
			p := new(structs.ACLPolicy)
			if err = dec.Decode(p); err == nil {
				err = s.restoreACLPolicy(p)
			}
		case recACLToken:
			t := new(structs.ACLToken)
			if err = dec.Decode(t); err == nil {
				err = s.restoreACLToken(t)
			}
		case recACLMeta:
			var m aclMeta
			if err = dec.Decode(&m); err == nil {
				s.acl.bootstrapIndex, s.acl.index = m.BootstrapIndex, m.Index
			}
		case recPreparedQuery:
			q := new(structs.PreparedQuery)
			if err = dec.Decode(q); err == nil {
				if q.ID == "" || s.queries[q.ID] != nil {
					err = fmt.Errorf("bad or duplicate prepared query %q", q.ID)
				} else {
					s.queries[q.ID] = q
					if q.Name != "" {
						s.queryNames[q.Name] = q.ID
					}
				}
			}
		case recCoordinate:
			c := new(structs.Coordinate)
			if err = dec.Decode(c); err == nil {
				if c.Node == "" {
					err = errors.New("coordinate without a node")
				} else {
					s.coords[c.Node] = c
				}
			}
		case recEnd:
			for _, nr := range s.nodes {
				for _, sr := range nr.services {
					sr.setChecks(combinedChecks(nr, sr.svc.ID))
				}
			}
			return s, nil
		default:
			err = fmt.Errorf("unknown record kind %d", kind)
		}
		if err != nil {
			return nil, fmt.Errorf("state: restore: %w", err)
		}
	}
}

func (s *Store) restoreNode(n *structs.Node) error {
	if n.Node == "" || s.nodes[n.Node] != nil {
		return fmt.Errorf("bad or duplicate node %q", n.Node)
	}
	s.nodes[n.Node] = &nodeRecord{
		node:     n,
		services: make(map[string]*svcRecord),
		checks:   make(map[string]*structs.HealthCheck),
	}
	s.nodeNames.insert(n.Node)
	return nil
}

func (s *Store) restoreService(rec serviceRecord) error {
	nr := s.nodes[rec.Node]
	if nr == nil || rec.Service == nil || nr.services[rec.Service.ID] != nil {
		return fmt.Errorf("bad service record on node %q", rec.Node)
	}
	sr := &svcRecord{nr: nr, svc: rec.Service, sn: serviceNode(nr.node, rec.Service)}
	nr.services[rec.Service.ID] = sr
	s.addInstance(sr)
	return nil
}

func (s *Store) restoreCheck(c *structs.HealthCheck) error {
	nr := s.nodes[c.Node]
	if nr == nil || (c.ServiceID != "" && nr.services[c.ServiceID] == nil) {
		return fmt.Errorf("check %q references unknown node %q or service %q", c.CheckID, c.Node, c.ServiceID)
	}
	nr.checks[c.CheckID] = c
	return nil
}

func (s *Store) restoreKV(e *structs.DirEntry) error {
	if e.Key == "" || s.kvs[e.Key] != nil {
		return fmt.Errorf("bad or duplicate key %q", e.Key)
	}
	s.kvs[e.Key] = e
	if e.Session != "" {
		s.indexLock(e.Session, e.Key)
	}
	s.kvKeys.insert(e.Key)
	s.recordKVAdd(e.Key) // floor covers the deletes before the snapshot
	return nil
}
