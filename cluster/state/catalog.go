package state

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

const (
	maskNodes    tableMask = 1 << TableNodes
	maskServices tableMask = 1 << TableServices
	maskChecks   tableMask = 1 << TableChecks
	maskKVS      tableMask = 1 << TableKVS
)

// EnsureRegistration upserts the request's node (unless SkipNodeUpdate and
// the node exists), its service and its checks at idx, atomically: invalid
// input is rejected before anything changes. A service without ID gets its
// name as ID; a check without CheckID gets its Name, without Status
// "critical" (Consul's defaults). Parts equal to what is stored are skipped
// and bump no index.
func (s *Store) EnsureRegistration(idx uint64, req *structs.RegisterRequest) error {
	if req == nil || req.Node == "" {
		return structs.ErrMissingNode
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.ensureRegistration(idx, req)
	if err != nil {
		// Validation runs before the first mutation: nothing to commit.
		s.pending.reset()
		return err
	}
	s.commit(m, idx)
	return nil
}

func (s *Store) ensureRegistration(idx uint64, req *structs.RegisterRequest) (tableMask, error) {
	nr := s.nodes[req.Node]
	if (nr == nil || !req.SkipNodeUpdate) && req.Address == "" {
		return 0, structs.ErrMissingAddress
	}
	var svc *structs.NodeService
	if req.Service != nil {
		v := *req.Service
		if v.ID == "" {
			v.ID = v.Service
		}
		if v.Service == "" {
			return 0, fmt.Errorf("state: register %s: missing service name", req.Node)
		}
		svc = &v
	}
	// Validate every check before the first mutation.
	validate := func(c *structs.HealthCheck) error {
		if c == nil {
			return nil
		}
		if c.CheckID == "" && c.Name == "" {
			return fmt.Errorf("state: register %s: %w", req.Node, ErrMissingCheckID)
		}
		if c.ServiceID == "" || (svc != nil && svc.ID == c.ServiceID) {
			return nil
		}
		if nr == nil || nr.services[c.ServiceID] == nil {
			return fmt.Errorf("state: register %s: check %q: %w %q", req.Node, c.CheckID, ErrUnknownService, c.ServiceID)
		}
		return nil
	}
	if err := validate(req.Check); err != nil {
		return 0, err
	}
	for _, c := range req.Checks {
		if err := validate(c); err != nil {
			return 0, err
		}
	}

	var m tableMask
	if nr == nil || !req.SkipNodeUpdate {
		nr, m = s.ensureNode(idx, nr, req)
	}

	if svc != nil {
		m |= s.ensureService(idx, nr, svc)
	}
	if req.Check != nil {
		m |= s.ensureCheck(idx, nr, req.Check)
	}
	for _, c := range req.Checks {
		if c != nil {
			m |= s.ensureCheck(idx, nr, c)
		}
	}
	if m&maskChecks != 0 {
		rebuildDirty(nr)
	}
	return m, nil
}

// ensureNode upserts the request's node over nr (nil if new) and returns
// its record.
func (s *Store) ensureNode(idx uint64, nr *nodeRecord, req *structs.RegisterRequest) (*nodeRecord, tableMask) {
	n := &structs.Node{
		ID:              req.ID,
		Node:            req.Node,
		Address:         req.Address,
		Datacenter:      req.Datacenter,
		TaggedAddresses: req.TaggedAddresses,
		Meta:            req.NodeMeta,
		CreateIndex:     idx,
		ModifyIndex:     idx,
	}
	switch {
	case nr == nil:
		nr = &nodeRecord{
			node:     n,
			services: make(map[string]*svcRecord),
			checks:   make(map[string]*structs.HealthCheck),
		}
		s.nodes[req.Node] = nr
		s.nodeNames.insert(req.Node)
	case !nodeSame(nr.node, n):
		n.CreateIndex = nr.node.CreateIndex
		nr.node = n
		for _, sr := range nr.services {
			sr.sn = serviceNode(n, sr.svc)
		}
		s.touchHosted(nr)
	default:
		return nr, 0
	}
	s.touchNode(nr)
	return nr, maskNodes
}

// ensureService upserts svc (owned by the store from here on) on nr.
func (s *Store) ensureService(idx uint64, nr *nodeRecord, svc *structs.NodeService) tableMask {
	sr := nr.services[svc.ID]
	if sr != nil && serviceSame(sr.svc, svc) {
		return 0
	}
	svc.CreateIndex, svc.ModifyIndex = idx, idx
	m := maskServices
	s.touchNode(nr)
	s.touchService(svc.Service)
	if sr == nil {
		sr = &svcRecord{nr: nr, svc: svc}
		nr.services[svc.ID] = sr
		s.addInstance(sr)
		sr.setChecks(combinedChecks(nr, svc.ID))
	} else {
		svc.CreateIndex = sr.svc.CreateIndex
		if sr.svc.Service != svc.Service {
			s.touchService(sr.svc.Service)
			s.removeInstance(sr)
			sr.svc = svc
			s.addInstance(sr)
		} else {
			sr.svc = svc
		}
		// Keep the service fields denormalised into its checks current.
		for id, c := range nr.checks {
			if c.ServiceID == svc.ID && (c.ServiceName != svc.Service || !slices.Equal(c.ServiceTags, svc.Tags)) {
				nc := *c
				nc.ServiceName, nc.ServiceTags, nc.ModifyIndex = svc.Service, svc.Tags, idx
				nr.checks[id] = &nc
				sr.checksDirty = true
				m |= maskChecks
			}
		}
	}
	sr.sn = serviceNode(nr.node, svc)
	return m
}

// ensureCheck upserts a copy of in on nr; its service, if any, was
// validated to exist. The caller runs rebuildDirty afterwards.
func (s *Store) ensureCheck(idx uint64, nr *nodeRecord, in *structs.HealthCheck) tableMask {
	hc := *in
	hc.Node = nr.node.Node
	if hc.CheckID == "" {
		hc.CheckID = hc.Name
	}
	if hc.Status == "" {
		hc.Status = structs.HealthCritical
	}
	hc.ServiceName, hc.ServiceTags = "", nil
	if hc.ServiceID != "" {
		sr := nr.services[hc.ServiceID]
		hc.ServiceName, hc.ServiceTags = sr.svc.Service, sr.svc.Tags
	}
	old := nr.checks[hc.CheckID]
	if old != nil && checkSame(old, &hc) {
		return 0
	}
	hc.CreateIndex, hc.ModifyIndex = idx, idx
	if old != nil {
		hc.CreateIndex = old.CreateIndex
		markDirty(nr, old.ServiceID)
		s.touchCheck(nr, old.ServiceID)
	}
	markDirty(nr, hc.ServiceID)
	s.touchCheck(nr, hc.ServiceID)
	nr.checks[hc.CheckID] = &hc
	m := maskChecks
	if hc.Status == structs.HealthCritical {
		m |= s.invalidateCheckSessions(idx, nr.node.Node, hc.CheckID)
	}
	return m
}

// markDirty flags the instances whose combined check list a change to a
// check of serviceID ("" = node-level) affects.
func markDirty(nr *nodeRecord, serviceID string) {
	if serviceID != "" {
		if sr := nr.services[serviceID]; sr != nil {
			sr.checksDirty = true
		}
		return
	}
	for _, sr := range nr.services {
		sr.checksDirty = true
	}
}

func rebuildDirty(nr *nodeRecord) {
	for _, sr := range nr.services {
		if sr.checksDirty {
			sr.setChecks(combinedChecks(nr, sr.svc.ID))
			sr.checksDirty = false
		}
	}
}

func (sr *svcRecord) setChecks(checks []*structs.HealthCheck) {
	sr.checks = checks
	sr.status = structs.AggregateStatus(checks)
}

// combinedChecks returns nr's node-level checks and serviceID's checks,
// sorted by CheckID, in a fresh slice (nil if none).
func combinedChecks(nr *nodeRecord, serviceID string) []*structs.HealthCheck {
	var out []*structs.HealthCheck
	for _, c := range nr.checks {
		if c.ServiceID == "" || c.ServiceID == serviceID {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *structs.HealthCheck) int { return strings.Compare(a.CheckID, b.CheckID) })
	return out
}

func instanceCmp(a, b *svcRecord) int {
	if c := strings.Compare(a.nr.node.Node, b.nr.node.Node); c != 0 {
		return c
	}
	return strings.Compare(a.svc.ID, b.svc.ID)
}

func (s *Store) addInstance(sr *svcRecord) {
	list := s.byService[sr.svc.Service]
	i, _ := slices.BinarySearchFunc(list, sr, instanceCmp)
	s.byService[sr.svc.Service] = slices.Insert(list, i, sr)
}

func (s *Store) removeInstance(sr *svcRecord) {
	name := sr.svc.Service
	list := s.byService[name]
	i, found := slices.BinarySearchFunc(list, sr, instanceCmp)
	if !found {
		return
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(s.byService, name)
		return
	}
	s.byService[name] = list
}

// Deregister removes a node with all its services and checks (ServiceID and
// CheckID empty), else the service ServiceID with its checks and/or the
// check CheckID. Removing something absent is a no-op, as in Consul.
func (s *Store) Deregister(idx uint64, req *structs.DeregisterRequest) error {
	if req == nil || req.Node == "" {
		return structs.ErrMissingNode
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commit(s.deregister(idx, req), idx)
	return nil
}

func (s *Store) deregister(idx uint64, req *structs.DeregisterRequest) tableMask {
	nr := s.nodes[req.Node]
	if nr == nil {
		return 0
	}
	var m tableMask
	if req.ServiceID == "" && req.CheckID == "" {
		m |= s.invalidateNodeSessions(idx, req.Node)
		s.touchNode(nr)
		s.touchHosted(nr)
		for _, sr := range nr.services {
			s.removeInstance(sr)
			m |= maskServices
		}
		if len(nr.checks) > 0 {
			m |= maskChecks
		}
		delete(s.nodes, req.Node)
		s.nodeNames.remove(req.Node)
		return m | maskNodes
	}
	if sr := nr.services[req.ServiceID]; req.ServiceID != "" && sr != nil {
		s.touchNode(nr)
		s.touchService(sr.svc.Service)
		s.removeInstance(sr)
		delete(nr.services, req.ServiceID)
		m |= maskServices
		for id, c := range nr.checks {
			if c.ServiceID == req.ServiceID {
				delete(nr.checks, id)
				m |= maskChecks | s.invalidateCheckSessions(idx, req.Node, id)
			}
		}
	}
	if c := nr.checks[req.CheckID]; req.CheckID != "" && c != nil {
		s.touchCheck(nr, c.ServiceID)
		delete(nr.checks, req.CheckID)
		m |= s.invalidateCheckSessions(idx, req.Node, req.CheckID)
		markDirty(nr, c.ServiceID)
		rebuildDirty(nr)
		m |= maskChecks
	}
	return m
}

func nodeSame(a, b *structs.Node) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Address == b.Address &&
		a.Datacenter == b.Datacenter && maps.Equal(a.TaggedAddresses, b.TaggedAddresses) &&
		maps.Equal(a.Meta, b.Meta)
}

func serviceSame(a, b *structs.NodeService) bool {
	if (a.Weights == nil) != (b.Weights == nil) || (a.Weights != nil && *a.Weights != *b.Weights) {
		return false
	}
	return a.ID == b.ID && a.Service == b.Service && slices.Equal(a.Tags, b.Tags) &&
		a.Address == b.Address && a.Port == b.Port && maps.Equal(a.Meta, b.Meta) &&
		a.EnableTagOverride == b.EnableTagOverride
}

func checkSame(a, b *structs.HealthCheck) bool {
	return a.Node == b.Node && a.CheckID == b.CheckID && a.Name == b.Name &&
		a.Status == b.Status && a.Notes == b.Notes && a.Output == b.Output &&
		a.ServiceID == b.ServiceID && a.ServiceName == b.ServiceName &&
		slices.Equal(a.ServiceTags, b.ServiceTags) && a.Type == b.Type
}

func serviceNode(n *structs.Node, svc *structs.NodeService) *structs.ServiceNode {
	// Consul's SRV weights for a service that sets none.
	w := structs.Weights{Passing: 1, Warning: 1}
	if svc.Weights != nil {
		w = *svc.Weights
	}
	return &structs.ServiceNode{
		ID:                       n.ID,
		Node:                     n.Node,
		Address:                  n.Address,
		Datacenter:               n.Datacenter,
		TaggedAddresses:          n.TaggedAddresses,
		NodeMeta:                 n.Meta,
		ServiceID:                svc.ID,
		ServiceName:              svc.Service,
		ServiceTags:              svc.Tags,
		ServiceAddress:           svc.Address,
		ServicePort:              svc.Port,
		ServiceMeta:              svc.Meta,
		ServiceWeights:           w,
		ServiceEnableTagOverride: svc.EnableTagOverride,
		CreateIndex:              svc.CreateIndex,
		ModifyIndex:              svc.ModifyIndex,
	}
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}
