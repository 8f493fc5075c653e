package local

import (
	"slices"
	"sort"

	"github.com/cairnd/cairn/cluster/structs"
)

// Sync bookkeeping between State and Syncer. The Syncer takes a snapshot,
// issues RPCs without any lock, then reports back per record with the
// revision it saw; a record changed meanwhile keeps its dirty flag.

type serviceSnap struct {
	svc     *structs.NodeService
	inSync  bool
	deleted bool
	rev     uint64
}

type checkSnap struct {
	chk     *structs.HealthCheck
	inSync  bool
	deleted bool
	rev     uint64
}

// syncSnapshot returns copies of every record, sorted by ID so syncs are
// deterministic.
func (s *State) syncSnapshot() ([]serviceSnap, []checkSnap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs := make([]serviceSnap, 0, len(s.services))
	for _, ss := range s.services {
		svcs = append(svcs, serviceSnap{svc: copyService(ss.svc), inSync: ss.inSync, deleted: ss.deleted, rev: ss.rev})
	}
	chks := make([]checkSnap, 0, len(s.checks))
	for _, cs := range s.checks {
		chks = append(chks, checkSnap{chk: copyCheck(cs.chk), inSync: cs.inSync, deleted: cs.deleted, rev: cs.rev})
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].svc.ID < svcs[j].svc.ID })
	sort.Slice(chks, func(i, j int) bool { return chks[i].chk.CheckID < chks[j].chk.CheckID })
	return svcs, chks
}

// reconcile compares local records with the catalog's view of this node,
// as Consul's updateSyncState: local records are marked in sync exactly
// when the catalog has an equal one; catalog-only records become deleted
// placeholders so the next sync deregisters them. The leader's serfHealth
// check and "consul" service are not the agent's and are left alone.
func (s *State) reconcile(remoteSvcs map[string]*structs.NodeService, remoteChecks map[string]*structs.HealthCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.services {
		rs := remoteSvcs[id]
		if ss.deleted {
			if rs == nil {
				delete(s.services, id) // already gone
			}
			continue
		}
		if rs == nil {
			ss.inSync = false
			continue
		}
		if ss.svc.EnableTagOverride && !slices.Equal(ss.svc.Tags, rs.Tags) {
			// Consul's enable_tag_override: tags edited in the catalog win.
			c := copyService(ss.svc)
			c.Tags = slices.Clone(rs.Tags)
			ss.svc = c
		}
		ss.inSync = sameService(ss.svc, rs)
	}
	for id := range remoteSvcs {
		if s.services[id] == nil && id != structs.ConsulServiceID {
			s.services[id] = &serviceState{svc: &structs.NodeService{ID: id, Service: remoteSvcs[id].Service}, deleted: true, rev: s.nextRevLocked()}
		}
	}
	for id, cs := range s.checks {
		rc := remoteChecks[id]
		if cs.deleted {
			if rc == nil {
				delete(s.checks, id)
			}
			continue
		}
		cs.inSync = rc != nil && sameCheck(cs.chk, rc)
	}
	for id, rc := range remoteChecks {
		if s.checks[id] == nil && !leaderOwned(rc) {
			s.checks[id] = &checkState{chk: &structs.HealthCheck{CheckID: id, ServiceID: rc.ServiceID}, deleted: true, rev: s.nextRevLocked()}
		}
	}
}

// leaderOwned reports a check the leader maintains for this node.
func leaderOwned(c *structs.HealthCheck) bool {
	return c.CheckID == structs.SerfCheckID || c.ServiceID == structs.ConsulServiceID
}

// markServiceSynced flags a service (and the checks sent with it) in sync
// if none changed since the snapshot.
func (s *State) markServiceSynced(id string, rev uint64, checks []checkSnap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.services[id]; ss != nil && ss.rev == rev && !ss.deleted {
		ss.inSync = true
	}
	for _, c := range checks {
		s.markCheckSyncedLocked(c.chk.CheckID, c.rev)
	}
}

func (s *State) markCheckSynced(id string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markCheckSyncedLocked(id, rev)
}

func (s *State) markCheckSyncedLocked(id string, rev uint64) {
	if cs := s.checks[id]; cs != nil && cs.rev == rev && !cs.deleted {
		cs.inSync = true
	}
}

// forgetService drops a deregistered service, and its deleted checks (the
// catalog removed them with it), unless it was re-added meanwhile.
func (s *State) forgetService(id string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.services[id]; ss != nil && ss.deleted && ss.rev == rev {
		delete(s.services, id)
		for cid, cs := range s.checks {
			if cs.deleted && cs.chk.ServiceID == id {
				delete(s.checks, cid)
			}
		}
	}
}

// forgetCheck drops a deregistered check unless it was re-added meanwhile.
func (s *State) forgetCheck(id string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.checks[id]; cs != nil && cs.deleted && cs.rev == rev {
		delete(s.checks, id)
	}
}
