package http

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// testBackend is an in-process, map-based catalog standing in for the
// agent: enough behaviour for handler tests and the official client. It
// records every call so tests can assert that bad input made none.
type testBackend struct {
	mu       sync.Mutex
	dc, node string
	index    uint64
	nodes    map[string]*structs.Node
	services map[string]map[string]*structs.NodeService // node → ID → service
	checks   map[string]map[string]*structs.HealthCheck // node → ID → check
	kv       map[string]*structs.DirEntry
	events   []structs.UserEvent
	calls    []string // RPC methods and local mutations, in order
	lastArgs any
	panicOn  string           // RPC method that panics
	failWith map[string]error // RPC method → error
	reg      *prometheus.Registry
	// eventsRead, when set, receives (without blocking) on every
	// UserEvents call: a test learns that a blocking list is polling.
	eventsRead chan struct{}
}

func newTestBackend() *testBackend {
	b := &testBackend{
		dc: "dc1", node: "node1", index: 1,
		nodes:    map[string]*structs.Node{},
		services: map[string]map[string]*structs.NodeService{},
		checks:   map[string]map[string]*structs.HealthCheck{},
		kv:       map[string]*structs.DirEntry{},
		failWith: map[string]error{},
		reg:      prometheus.NewRegistry(),
	}
	b.nodes["node1"] = &structs.Node{ID: "2d8c1c6e-7f7c-4b8a-9d7e-0a6f1c2b3d4e", Node: "node1",
		Address: "127.0.0.1", Datacenter: "dc1", CreateIndex: 1, ModifyIndex: 1}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_dns_queries_total", Help: "test"})
	c.Add(3)
	b.reg.MustRegister(c)
	return b
}

func (b *testBackend) record(what string) {
	b.calls = append(b.calls, what)
}

// Calls returns what was called so far.
func (b *testBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *testBackend) meta() structs.QueryMeta {
	return structs.QueryMeta{Index: b.index, KnownLeader: true, LastContact: 0}
}

func (b *testBackend) RPC(_ context.Context, method string, args, reply any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(method)
	b.lastArgs = args
	if method == b.panicOn {
		panic("test panic in " + method)
	}
	if err := b.failWith[method]; err != nil {
		return err
	}
	switch method {
	case structs.MethodCatalogRegister:
		b.register(args.(*structs.RegisterRequest))
		*reply.(*structs.WriteResponse) = structs.WriteResponse{Index: b.index, Success: true}
	case structs.MethodCatalogDeregister:
		a := args.(*structs.DeregisterRequest)
		b.index++
		switch {
		case a.CheckID != "":
			delete(b.checks[a.Node], a.CheckID)
		case a.ServiceID != "":
			b.removeService(a.Node, a.ServiceID)
		default:
			delete(b.nodes, a.Node)
			delete(b.services, a.Node)
			delete(b.checks, a.Node)
		}
	case structs.MethodCatalogListDatacenters:
		*reply.(*[]string) = []string{b.dc}
	case structs.MethodCatalogListNodes:
		out := reply.(*structs.IndexedNodes)
		for _, name := range sortedKeys(b.nodes) {
			out.Nodes = append(out.Nodes, b.nodes[name])
		}
		out.QueryMeta = b.meta()
	case structs.MethodCatalogListServices:
		out := reply.(*structs.IndexedServices)
		out.Services = map[string][]string{}
		for _, svcs := range b.services {
			for _, s := range svcs {
				out.Services[s.Service] = append(out.Services[s.Service], s.Tags...)
			}
		}
		out.QueryMeta = b.meta()
	case structs.MethodCatalogServiceNodes:
		a := args.(*structs.ServiceSpecificRequest)
		out := reply.(*structs.IndexedServiceNodes)
		for _, csn := range b.serviceNodes(a) {
			n, s := csn.Node, csn.Service
			sn := &structs.ServiceNode{ID: n.ID, Node: n.Node,
				Address: n.Address, Datacenter: n.Datacenter, TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
				ServiceID: s.ID, ServiceName: s.Service, ServiceTags: s.Tags, ServiceAddress: s.Address,
				ServicePort: s.Port, ServiceMeta: s.Meta, ServiceEnableTagOverride: s.EnableTagOverride,
				CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex}
			if s.Weights != nil {
				sn.ServiceWeights = *s.Weights
			}
			out.ServiceNodes = append(out.ServiceNodes, sn)
		}
		out.QueryMeta = b.meta()
	case structs.MethodCatalogNodeServices:
		a := args.(*structs.NodeSpecificRequest)
		out := reply.(*structs.IndexedNodeServices)
		if n, ok := b.nodes[a.Node]; ok {
			out.NodeServices = &structs.NodeServices{Node: n, Services: b.services[a.Node]}
		}
		out.QueryMeta = b.meta()
	case structs.MethodHealthServiceNodes:
		a := args.(*structs.ServiceSpecificRequest)
		out := reply.(*structs.IndexedCheckServiceNodes)
		out.Nodes = b.serviceNodes(a)
		out.QueryMeta = b.meta()
	case structs.MethodHealthNodeChecks:
		a := args.(*structs.NodeSpecificRequest)
		out := reply.(*structs.IndexedHealthChecks)
		out.HealthChecks = b.filterChecks(func(c *structs.HealthCheck) bool { return c.Node == a.Node })
		out.QueryMeta = b.meta()
	case structs.MethodHealthServiceChecks:
		a := args.(*structs.ServiceSpecificRequest)
		out := reply.(*structs.IndexedHealthChecks)
		out.HealthChecks = b.filterChecks(func(c *structs.HealthCheck) bool { return c.ServiceName == a.ServiceName })
		out.QueryMeta = b.meta()
	case structs.MethodHealthChecksInState:
		a := args.(*structs.ChecksInStateRequest)
		out := reply.(*structs.IndexedHealthChecks)
		out.HealthChecks = b.filterChecks(func(c *structs.HealthCheck) bool {
			return a.State == structs.HealthAny || c.Status == a.State
		})
		out.QueryMeta = b.meta()
	case structs.MethodKVSGet, structs.MethodKVSList:
		a := args.(*structs.KeyRequest)
		out := reply.(*structs.IndexedDirEntries)
		for _, k := range sortedKeys(b.kv) {
			if k == a.Key || (method == structs.MethodKVSList && strings.HasPrefix(k, a.Key)) {
				e := *b.kv[k]
				out.Entries = append(out.Entries, &e)
			}
		}
		out.QueryMeta = b.meta()
	case structs.MethodKVSListKeys:
		a := args.(*structs.KeyRequest)
		out := reply.(*structs.IndexedKeyList)
		seen := map[string]bool{}
		for _, k := range sortedKeys(b.kv) {
			if !strings.HasPrefix(k, a.Key) {
				continue
			}
			if a.Separator != "" {
				if i := strings.Index(k[len(a.Key):], a.Separator); i >= 0 {
					k = k[:len(a.Key)+i+len(a.Separator)]
				}
			}
			if !seen[k] {
				seen[k] = true
				out.Keys = append(out.Keys, k)
			}
		}
		out.QueryMeta = b.meta()
	case structs.MethodKVSApply:
		*reply.(*structs.WriteResponse) = b.kvApply(args.(*structs.KVSRequest))
	case structs.MethodEventFire:
		a := args.(*structs.EventFireRequest)
		ev := a.Event
		ev.LTime = uint64(len(b.events) + 1)
		b.events = append(b.events, ev)
	case structs.MethodStatusLeader:
		*reply.(*string) = "127.0.0.1:8300"
	case structs.MethodStatusPeers:
		*reply.(*[]string) = []string{"127.0.0.1:8300"}
	case structs.MethodOperatorRaftConfig:
		*reply.(*structs.RaftConfigurationResponse) = structs.RaftConfigurationResponse{
			Servers: []*structs.RaftServer{{ID: "id1", Node: "node1", Address: "127.0.0.1:8300",
				Leader: true, Voter: true, Protocol: "3"}},
			Index: b.index,
		}
	case structs.MethodSessionApply:
		*reply.(*structs.WriteResponse) = structs.WriteResponse{Index: b.index, Success: true}
	case structs.MethodPreparedQueryApply:
		*reply.(*string) = "9b2c9e8a-0000-4000-8000-000000000001"
	case structs.MethodCoordinateUpdate:
		*reply.(*structs.WriteResponse) = structs.WriteResponse{Index: b.index, Success: true}
	default:
		return fmt.Errorf("testBackend: unknown method %s", method)
	}
	return nil
}

func (b *testBackend) register(a *structs.RegisterRequest) {
	b.index++
	n, ok := b.nodes[a.Node]
	if !ok {
		n = &structs.Node{Node: a.Node, Datacenter: b.dc, CreateIndex: b.index}
		b.nodes[a.Node] = n
	}
	if !a.SkipNodeUpdate {
		n.ID, n.Address, n.TaggedAddresses, n.Meta = a.ID, a.Address, a.TaggedAddresses, a.NodeMeta
	}
	n.ModifyIndex = b.index
	if a.Service != nil {
		if b.services[a.Node] == nil {
			b.services[a.Node] = map[string]*structs.NodeService{}
		}
		s := *a.Service
		s.CreateIndex, s.ModifyIndex = b.index, b.index
		b.services[a.Node][s.ID] = &s
	}
	checks := a.Checks
	if a.Check != nil {
		checks = append(checks, a.Check)
	}
	for _, c := range checks {
		if b.checks[a.Node] == nil {
			b.checks[a.Node] = map[string]*structs.HealthCheck{}
		}
		cc := *c
		cc.Node = a.Node
		if s := b.services[a.Node][cc.ServiceID]; s != nil {
			cc.ServiceName, cc.ServiceTags = s.Service, s.Tags
		}
		cc.CreateIndex, cc.ModifyIndex = b.index, b.index
		b.checks[a.Node][cc.CheckID] = &cc
	}
}

func (b *testBackend) removeService(node, id string) {
	delete(b.services[node], id)
	for cid, c := range b.checks[node] {
		if c.ServiceID == id {
			delete(b.checks[node], cid)
		}
	}
}

func (b *testBackend) serviceNodes(a *structs.ServiceSpecificRequest) []structs.CheckServiceNode {
	var out []structs.CheckServiceNode
	for _, node := range sortedKeys(b.services) {
		for _, id := range sortedKeys(b.services[node]) {
			s := b.services[node][id]
			if s.Service != a.ServiceName || (a.TagFilter && !contains(s.Tags, a.ServiceTag)) {
				continue
			}
			csn := structs.CheckServiceNode{Node: b.nodes[node], Service: s}
			for _, cid := range sortedKeys(b.checks[node]) {
				if c := b.checks[node][cid]; c.ServiceID == "" || c.ServiceID == s.ID {
					csn.Checks = append(csn.Checks, c)
				}
			}
			if a.PassingOnly && csn.AggregatedStatus() != structs.HealthPassing {
				continue
			}
			out = append(out, csn)
		}
	}
	return out
}

func (b *testBackend) filterChecks(keep func(*structs.HealthCheck) bool) []*structs.HealthCheck {
	var out []*structs.HealthCheck
	for _, node := range sortedKeys(b.checks) {
		for _, id := range sortedKeys(b.checks[node]) {
			if c := b.checks[node][id]; keep(c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func (b *testBackend) kvApply(a *structs.KVSRequest) structs.WriteResponse {
	key := a.DirEnt.Key
	cur := b.kv[key]
	b.index++
	ok := true
	switch a.Op {
	case structs.KVSet, structs.KVCAS:
		if a.Op == structs.KVCAS {
			if (cur == nil && a.DirEnt.ModifyIndex != 0) || (cur != nil && cur.ModifyIndex != a.DirEnt.ModifyIndex) {
				ok = false
				break
			}
		}
		e := a.DirEnt
		e.CreateIndex, e.ModifyIndex = b.index, b.index
		if cur != nil {
			e.CreateIndex = cur.CreateIndex
		}
		b.kv[key] = &e
	case structs.KVDelete:
		delete(b.kv, key)
	case structs.KVDeleteCAS:
		if cur == nil || cur.ModifyIndex != a.DirEnt.ModifyIndex {
			ok = false
			break
		}
		delete(b.kv, key)
	case structs.KVDeleteTree:
		for k := range b.kv {
			if strings.HasPrefix(k, key) {
				delete(b.kv, k)
			}
		}
	}
	return structs.WriteResponse{Index: b.index, Success: ok}
}

func (b *testBackend) Datacenter() string { return b.dc }
func (b *testBackend) NodeName() string   { return b.node }

func (b *testBackend) Self() map[string]any {
	return map[string]any{
		"Config": map[string]any{"Datacenter": b.dc, "NodeName": b.node, "Server": true},
		"Member": b.Members(false)[0],
	}
}

func (b *testBackend) Members(wan bool) []Member {
	name := b.node
	if wan {
		name += "." + b.dc
	}
	return []Member{{Name: name, Addr: "127.0.0.1", Port: 8301,
		Tags:   map[string]string{"role": "consul", "dc": b.dc},
		Status: MemberStatusAlive, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2,
		DelegateMin: 2, DelegateMax: 5, DelegateCur: 4}}
}

func (b *testBackend) local(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(what)
}

func (b *testBackend) Join(_ context.Context, addrs []string, _ bool) (int, error) {
	b.local("Join " + strings.Join(addrs, ","))
	return len(addrs), nil
}
func (b *testBackend) Leave(context.Context) error  { b.local("Leave"); return nil }
func (b *testBackend) Reload(context.Context) error { b.local("Reload"); return nil }
func (b *testBackend) ForceLeave(_ context.Context, node string, prune bool) error {
	b.local(fmt.Sprintf("ForceLeave %s %v", node, prune))
	return nil
}

func (b *testBackend) LocalServices() map[string]*structs.NodeService {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]*structs.NodeService{}
	for id, s := range b.services[b.node] {
		out[id] = s
	}
	return out
}

func (b *testBackend) LocalChecks() map[string]*structs.HealthCheck {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]*structs.HealthCheck{}
	for id, c := range b.checks[b.node] {
		out[id] = c
	}
	return out
}

// checkFromDef is the agent's (simplified) definition → catalog check;
// def has its defaults set by the handler.
func (b *testBackend) checkFromDef(def *config.CheckDefinition, svc *structs.NodeService) *structs.HealthCheck {
	c := &structs.HealthCheck{Node: b.node, CheckID: def.ID, Name: def.Name, Notes: def.Notes,
		Status: def.Status, ServiceID: def.ServiceID, Type: def.Kind()}
	if svc != nil {
		c.ServiceID, c.ServiceName, c.ServiceTags = svc.ID, svc.Service, svc.Tags
	}
	return c
}

func (b *testBackend) AddService(_ context.Context, def *config.ServiceDefinition) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("AddService " + def.Name)
	s := &structs.NodeService{ID: def.ID, Service: def.Name, Tags: def.Tags, Address: def.Address,
		Port: def.Port, Meta: def.Meta, EnableTagOverride: def.EnableTagOverride,
		Weights: &structs.Weights{Passing: def.Weights.Passing, Warning: def.Weights.Warning}}
	req := &structs.RegisterRequest{Node: b.node, Address: "127.0.0.1", Service: s, SkipNodeUpdate: true}
	for _, cd := range def.AllChecks() {
		req.Checks = append(req.Checks, b.checkFromDef(cd, s))
	}
	b.register(req)
	return nil
}

func (b *testBackend) RemoveService(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("RemoveService " + id)
	if _, ok := b.services[b.node][id]; !ok {
		return fmt.Errorf("%w: unknown service ID %q", ErrNotFound, id)
	}
	b.index++
	b.removeService(b.node, id)
	return nil
}

func (b *testBackend) AddCheck(_ context.Context, def *config.CheckDefinition) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("AddCheck " + def.Name)
	svc := b.services[b.node][def.ServiceID]
	if def.ServiceID != "" && svc == nil {
		return fmt.Errorf("%w: ServiceID %q does not exist", ErrBadRequest, def.ServiceID)
	}
	b.register(&structs.RegisterRequest{Node: b.node, SkipNodeUpdate: true,
		Check: b.checkFromDef(def, svc)})
	return nil
}

func (b *testBackend) RemoveCheck(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("RemoveCheck " + id)
	if _, ok := b.checks[b.node][id]; !ok {
		return fmt.Errorf("%w: unknown check ID %q", ErrNotFound, id)
	}
	b.index++
	delete(b.checks[b.node], id)
	return nil
}

func (b *testBackend) UpdateTTL(_ context.Context, id, status, output string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record("UpdateTTL " + id + " " + status)
	c, ok := b.checks[b.node][id]
	if !ok {
		return fmt.Errorf("%w: unknown check ID %q", ErrNotFound, id)
	}
	b.index++
	c.Status, c.Output, c.ModifyIndex = status, output, b.index
	return nil
}

func (b *testBackend) ServiceMaintenance(_ context.Context, id string, enable bool, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(fmt.Sprintf("ServiceMaintenance %s %v %s", id, enable, reason))
	if _, ok := b.services[b.node][id]; !ok {
		return fmt.Errorf("%w: unknown service ID %q", ErrNotFound, id)
	}
	return nil
}

func (b *testBackend) NodeMaintenance(_ context.Context, enable bool, reason string) error {
	b.local(fmt.Sprintf("NodeMaintenance %v %s", enable, reason))
	return nil
}

func (b *testBackend) UserEvents() []structs.UserEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.eventsRead <- struct{}{}:
	default:
	}
	return append([]structs.UserEvent(nil), b.events...)
}

func (b *testBackend) Monitor(ctx context.Context, level string) (<-chan []byte, error) {
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		for _, l := range []string{"[INFO] agent: one (" + level + ")", "[INFO] agent: two\n"} {
			select {
			case ch <- []byte(l):
			case <-ctx.Done():
				return
			}
		}
		select { // hold the stream open until the client leaves
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}()
	return ch, nil
}

func (b *testBackend) Metrics() prometheus.Gatherer { return b.reg }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var _ Backend = (*testBackend)(nil)
