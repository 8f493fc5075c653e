package state

import (
	"slices"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

// Nodes returns every node sorted by name, with the nodes table index.
func (s *Store) Nodes() (uint64, []*structs.Node) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.Node, 0, len(s.nodes))
	s.nodeNames.ascendPrefix("", func(name string) bool {
		out = append(out, s.nodes[name].node)
		return true
	})
	return s.maxIndex(TableNodes), out
}

// Node returns the named node (nil if unknown) with the node's index.
func (s *Store) Node(name string) (uint64, *structs.Node) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.nodeIndexOf(name)
	if nr := s.nodes[name]; nr != nil {
		return idx, nr.node
	}
	return idx, nil
}

// ServiceIndex is the index a read of service name reports (its last
// change), without the read: what the subscription publisher checks
// before reusing a result it already built.
func (s *Store) ServiceIndex(name string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.serviceIndex(name)
}

// NodeIndex is the index a read of node name reports.
func (s *Store) NodeIndex(name string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nodeIndexOf(name)
}

// Services returns every service name with the sorted union of its
// instances' tags (an empty, non-nil slice when untagged).
func (s *Store) Services() (uint64, map[string][]string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]string, len(s.byService))
	for name, list := range s.byService {
		tags := []string{}
		for _, sr := range list {
			tags = append(tags, sr.svc.Tags...)
		}
		slices.Sort(tags)
		out[name] = slices.Compact(tags)
	}
	return s.maxIndex(TableServices), out
}

// ServiceNodes returns the instances of service carrying tag (any instance
// when tag is empty; case-insensitive), sorted by node then service ID, with
// the service's index.
func (s *Store) ServiceNodes(service, tag string) (uint64, []*structs.ServiceNode) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.byService[service]
	out := make([]*structs.ServiceNode, 0, len(list))
	for _, sr := range list {
		if tag == "" || hasTag(sr.svc.Tags, tag) {
			out = append(out, sr.sn)
		}
	}
	return s.serviceIndex(service), out
}

// CheckServiceNodes returns the instances of service carrying tag, each
// with its node and the checks that apply to it (node-level checks and the
// service's own, by CheckID). With passingOnly, instances whose aggregate
// status is not passing are dropped, as Consul's ?passing. The index is the
// service's.
func (s *Store) CheckServiceNodes(service, tag string, passingOnly bool) (uint64, []structs.CheckServiceNode) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.byService[service]
	out := make([]structs.CheckServiceNode, 0, len(list))
	for _, sr := range list {
		if tag != "" && !hasTag(sr.svc.Tags, tag) {
			continue
		}
		if passingOnly && sr.status != structs.HealthPassing {
			continue
		}
		out = append(out, structs.CheckServiceNode{Node: sr.nr.node, Service: sr.svc, Checks: sr.checks})
	}
	return s.serviceIndex(service), out
}

// NodeServices returns the node with its services by ID, or nil if the
// node is unknown, with the node's index.
func (s *Store) NodeServices(node string) (uint64, *structs.NodeServices) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.nodeIndexOf(node)
	nr := s.nodes[node]
	if nr == nil {
		return idx, nil
	}
	ns := &structs.NodeServices{Node: nr.node, Services: make(map[string]*structs.NodeService, len(nr.services))}
	for id, sr := range nr.services {
		ns.Services[id] = sr.svc
	}
	return idx, ns
}

func byCheckID(a, b *structs.HealthCheck) int { return strings.Compare(a.CheckID, b.CheckID) }

// The check reads return an empty, non-nil slice when nothing matches, so
// the HTTP API encodes [] as Consul does.

// NodeChecks returns the node's checks sorted by CheckID, with the node's
// index.
func (s *Store) NodeChecks(node string) (uint64, []*structs.HealthCheck) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*structs.HealthCheck{}
	if nr := s.nodes[node]; nr != nil {
		out = make([]*structs.HealthCheck, 0, len(nr.checks))
		for _, c := range nr.checks {
			out = append(out, c)
		}
		slices.SortFunc(out, byCheckID)
	}
	return s.nodeIndexOf(node), out
}

// ServiceChecks returns the checks of every instance of service, sorted by
// node, service ID, then CheckID, with the service's index.
func (s *Store) ServiceChecks(service string) (uint64, []*structs.HealthCheck) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*structs.HealthCheck{}
	for _, sr := range s.byService[service] {
		for _, c := range sr.checks {
			if c.ServiceID == sr.svc.ID {
				out = append(out, c)
			}
		}
	}
	return s.serviceIndex(service), out
}

// ChecksInState returns the checks whose status is state (every check for
// "any"), sorted by node then CheckID.
func (s *Store) ChecksInState(state string) (uint64, []*structs.HealthCheck) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*structs.HealthCheck{}
	s.nodeNames.ascendPrefix("", func(name string) bool {
		start := len(out)
		for _, c := range s.nodes[name].checks {
			if state == structs.HealthAny || c.Status == state {
				out = append(out, c)
			}
		}
		slices.SortFunc(out[start:], byCheckID)
		return true
	})
	return s.maxIndex(TableChecks), out
}
