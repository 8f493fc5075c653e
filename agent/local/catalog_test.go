package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cairnd/cairn/cluster/structs"
)

// memCatalog stands in for the server tier: it applies Register and
// Deregister requests to maps and answers the two reads the Syncer makes.
// Requests and replies go through msgpack, as on the real wire, so
// nil-versus-empty and pointer aliasing behave as they will in production.
type memCatalog struct {
	mu       sync.Mutex
	index    uint64
	nodes    map[string]*structs.Node
	services map[string]map[string]*structs.NodeService
	checks   map[string]map[string]*structs.HealthCheck
	writes   int
	reads    int
	down     bool
	// onWrite runs (without the lock) before a write is applied.
	onWrite func(method string)
}

func newMemCatalog() *memCatalog {
	return &memCatalog{
		nodes:    map[string]*structs.Node{},
		services: map[string]map[string]*structs.NodeService{},
		checks:   map[string]map[string]*structs.HealthCheck{},
	}
}

var errDown = errors.New("no known servers")

func roundTrip(in, out any) error {
	b, err := structs.EncodeMsgpack(in)
	if err != nil {
		return err
	}
	return structs.DecodeMsgpack(b, out)
}

func (m *memCatalog) RPC(ctx context.Context, method string, args, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	down, hook := m.down, m.onWrite
	m.mu.Unlock()
	if down {
		return errDown
	}
	if hook != nil && structs.IsWriteMethod(method) {
		hook(method)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch method {
	case structs.MethodCatalogRegister:
		var req structs.RegisterRequest
		if err := roundTrip(args, &req); err != nil {
			return err
		}
		m.writes++
		if err := m.register(&req); err != nil {
			return err
		}
		return roundTrip(structs.WriteResponse{Index: m.index}, reply)
	case structs.MethodCatalogDeregister:
		var req structs.DeregisterRequest
		if err := roundTrip(args, &req); err != nil {
			return err
		}
		m.writes++
		m.deregister(&req)
		return roundTrip(structs.WriteResponse{Index: m.index}, reply)
	case structs.MethodCatalogNodeServices:
		var req structs.NodeSpecificRequest
		if err := roundTrip(args, &req); err != nil {
			return err
		}
		m.reads++
		out := structs.IndexedNodeServices{QueryMeta: structs.QueryMeta{Index: m.index, KnownLeader: true}}
		if n := m.nodes[req.Node]; n != nil {
			out.NodeServices = &structs.NodeServices{Node: n, Services: m.services[req.Node]}
		}
		return roundTrip(out, reply)
	case structs.MethodHealthNodeChecks:
		var req structs.NodeSpecificRequest
		if err := roundTrip(args, &req); err != nil {
			return err
		}
		m.reads++
		out := structs.IndexedHealthChecks{QueryMeta: structs.QueryMeta{Index: m.index}}
		for _, c := range m.checks[req.Node] {
			out.HealthChecks = append(out.HealthChecks, c)
		}
		return roundTrip(out, reply)
	}
	return fmt.Errorf("memCatalog: unknown method %s", method)
}

func (m *memCatalog) register(req *structs.RegisterRequest) error {
	if req.Node == "" {
		return structs.ErrMissingNode
	}
	m.index++
	if n := m.nodes[req.Node]; n == nil || !req.SkipNodeUpdate {
		m.nodes[req.Node] = &structs.Node{ID: req.ID, Node: req.Node, Address: req.Address, Datacenter: req.Datacenter,
			TaggedAddresses: req.TaggedAddresses, Meta: req.NodeMeta, CreateIndex: m.index, ModifyIndex: m.index}
		if m.services[req.Node] == nil {
			m.services[req.Node] = map[string]*structs.NodeService{}
			m.checks[req.Node] = map[string]*structs.HealthCheck{}
		}
	}
	if s := req.Service; s != nil {
		s.CreateIndex, s.ModifyIndex = m.index, m.index
		m.services[req.Node][s.ID] = s
	}
	checks := req.Checks
	if req.Check != nil {
		checks = append(checks, req.Check)
	}
	for _, c := range checks {
		c.Node = req.Node
		c.ServiceName, c.ServiceTags = "", nil
		if c.ServiceID != "" {
			s := m.services[req.Node][c.ServiceID]
			if s == nil {
				return fmt.Errorf("memCatalog: check %s: unknown service %s", c.CheckID, c.ServiceID)
			}
			c.ServiceName, c.ServiceTags = s.Service, slices.Clone(s.Tags)
		}
		c.CreateIndex, c.ModifyIndex = m.index, m.index
		m.checks[req.Node][c.CheckID] = c
	}
	return nil
}

func (m *memCatalog) deregister(req *structs.DeregisterRequest) {
	m.index++
	switch {
	case req.ServiceID == "" && req.CheckID == "":
		delete(m.nodes, req.Node)
		delete(m.services, req.Node)
		delete(m.checks, req.Node)
	case req.ServiceID != "":
		delete(m.services[req.Node], req.ServiceID)
		for id, c := range m.checks[req.Node] {
			if c.ServiceID == req.ServiceID {
				delete(m.checks[req.Node], id)
			}
		}
	default:
		delete(m.checks[req.Node], req.CheckID)
	}
}

// Accessors for tests.

func (m *memCatalog) service(node, id string) *structs.NodeService {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.services[node][id]
}

func (m *memCatalog) check(node, id string) *structs.HealthCheck {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checks[node][id]
}

func (m *memCatalog) writeCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

func (m *memCatalog) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// edit applies f to the catalog directly, as an operator's
// /v1/catalog/register or deregister would.
func (m *memCatalog) edit(f func(m *memCatalog)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}
