package http

import (
	"encoding/json"
	nethttp "net/http"
	"slices"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

// catalogRegisterBody is Consul's /v1/catalog/register body. Fields Cairn
// does not model (Enterprise partitions, Connect, locality) are accepted
// so the official clients' requests decode, and ignored.
type catalogRegisterBody struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string
	Service         *catalogService
	Check           *catalogCheck
	Checks          []*catalogCheck
	SkipNodeUpdate  bool
	Partition       string
	Namespace       string
	Locality        json.RawMessage
}

type catalogService struct {
	Kind              string
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Ports             json.RawMessage
	Address           string
	SocketPath        string
	TaggedAddresses   json.RawMessage
	Weights           *structs.Weights
	EnableTagOverride bool
	CreateIndex       uint64
	ModifyIndex       uint64
	ContentHash       string
	Proxy             json.RawMessage
	Connect           json.RawMessage
	PeerName          string
	AI                json.RawMessage
	Namespace         string
	Partition         string
	Datacenter        string
	Locality          json.RawMessage
}

type catalogCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	ExposedPort int
	Definition  json.RawMessage
	Namespace   string
	Partition   string
	PeerName    string
	CreateIndex uint64
	ModifyIndex uint64
}

func (c *catalogCheck) toStructs(node string) (*structs.HealthCheck, error) {
	if c.Node != "" && c.Node != node {
		return nil, badRequest("Check node %q does not match registration node %q", c.Node, node)
	}
	id := c.CheckID
	if id == "" {
		id = c.Name
	}
	if id == "" {
		return nil, badRequest("Missing check ID or name")
	}
	status := c.Status
	switch status {
	case "":
		status = structs.HealthCritical
	case structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	default:
		return nil, badRequest("Invalid check status %q", c.Status)
	}
	return &structs.HealthCheck{
		Node: node, CheckID: id, Name: c.Name, Status: status, Notes: c.Notes,
		Output: c.Output, ServiceID: c.ServiceID, ServiceName: c.ServiceName,
		ServiceTags: c.ServiceTags, Type: c.Type,
	}, nil
}

func (a *handler) catalogRegister(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var body catalogRegisterBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := validName("node name", body.Node); err != nil {
		return err
	}
	if body.Address == "" && !body.SkipNodeUpdate {
		return badRequest("Missing node address")
	}
	args := structs.RegisterRequest{
		Datacenter: body.Datacenter, ID: body.ID, Node: body.Node, Address: body.Address,
		TaggedAddresses: body.TaggedAddresses, NodeMeta: body.NodeMeta,
		SkipNodeUpdate: body.SkipNodeUpdate,
	}
	if args.Datacenter == "" {
		args.Datacenter = a.datacenter(r.URL.Query())
	}
	if s := body.Service; s != nil {
		if err := validName("service name", s.Service); err != nil {
			return err
		}
		ns := &structs.NodeService{
			ID: s.ID, Service: s.Service, Tags: s.Tags, Address: s.Address, Port: s.Port,
			Meta: s.Meta, Weights: s.Weights, EnableTagOverride: s.EnableTagOverride,
		}
		if ns.ID == "" {
			ns.ID = ns.Service
		}
		if ns.Weights == nil || ns.Weights.Passing == 0 {
			ns.Weights = &structs.Weights{Passing: 1, Warning: 1}
		}
		args.Service = ns
	}
	if body.Check != nil {
		c, err := body.Check.toStructs(body.Node)
		if err != nil {
			return err
		}
		args.Check = c
	}
	for _, bc := range body.Checks {
		if bc == nil {
			continue
		}
		c, err := bc.toStructs(body.Node)
		if err != nil {
			return err
		}
		args.Checks = append(args.Checks, c)
	}
	if err := validateWrite(&args); err != nil {
		return err
	}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodCatalogRegister, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, true)
}

type catalogDeregisterBody struct {
	Node       string
	Address    string
	Datacenter string
	ServiceID  string
	CheckID    string
	Namespace  string
	Partition  string
}

func (a *handler) catalogDeregister(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var body catalogDeregisterBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := validName("node name", body.Node); err != nil {
		return err
	}
	args := structs.DeregisterRequest{Datacenter: body.Datacenter, Node: body.Node,
		ServiceID: body.ServiceID, CheckID: body.CheckID}
	if args.Datacenter == "" {
		args.Datacenter = a.datacenter(r.URL.Query())
	}
	if err := validateWrite(&args); err != nil {
		return err
	}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodCatalogDeregister, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, true)
}

func (a *handler) catalogDatacenters(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out []string
	if err := a.b.RPC(r.Context(), structs.MethodCatalogListDatacenters, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, nonNil(out))
}

func (a *handler) catalogNodes(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	if err := parseNodeMeta(r, &args.NodeMetaFilters); err != nil {
		return err
	}
	var out structs.IndexedNodes
	if err := a.b.RPC(r.Context(), structs.MethodCatalogListNodes, &args, &out); err != nil {
		return err
	}
	nodes, err := filterSlice(flt, out.Nodes)
	if err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	nodes = slices.Clone(nodes) // sorted below; the reply may be the store's
	if err := sortNear(a, r, args.Datacenter, nodes, func(n *structs.Node) string { return n.Node }); err != nil {
		return err
	}
	return writeJSON(w, r, nonNil(nodes))
}

func (a *handler) catalogServices(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	if err := parseNodeMeta(r, &args.NodeMetaFilters); err != nil {
		return err
	}
	var out structs.IndexedServices
	if err := a.b.RPC(r.Context(), structs.MethodCatalogListServices, &args, &out); err != nil {
		return err
	}
	services := out.Services
	if flt != nil {
		if services, err = a.filterServices(r, &args, services, flt); err != nil {
			return err
		}
	}
	setQueryMeta(w, &out.QueryMeta)
	if services == nil {
		services = map[string][]string{}
	}
	for k, v := range services {
		services[k] = nonNil(v)
	}
	return writeJSON(w, r, services)
}

func (a *handler) catalogServiceNodes(w nethttp.ResponseWriter, r *nethttp.Request, service string) error {
	args, err := a.parseServiceRequest(r, service)
	if err != nil {
		return err
	}
	flt, err := parseFilter(r)
	if err != nil {
		return err
	}
	var out structs.IndexedServiceNodes
	if err := a.b.RPC(r.Context(), structs.MethodCatalogServiceNodes, &args, &out); err != nil {
		return err
	}
	matched, err := filterSlice(flt, out.ServiceNodes)
	if err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	rows := make([]*structs.ServiceNode, len(matched))
	for i, sn := range matched {
		if sn.ServiceTags == nil { // a copy: on a server agent sn is the state store's
			c := *sn
			c.ServiceTags = []string{}
			sn = &c
		}
		if wan := sn.TaggedAddresses["wan"]; wan != "" && a.translateWAN(args.Datacenter) {
			c := *sn
			c.Address = wan
			sn = &c
		}
		rows[i] = sn
	}
	if err := sortNear(a, r, args.Datacenter, rows, func(sn *structs.ServiceNode) string { return sn.Node }); err != nil {
		return err
	}
	return writeJSON(w, r, rows)
}

func (a *handler) catalogNodeServices(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	args := structs.NodeSpecificRequest{Node: node}
	if err := validName("node name", node); err != nil {
		return err
	}
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	var out structs.IndexedNodeServices
	if err := a.b.RPC(r.Context(), structs.MethodCatalogNodeServices, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	// Consul answers 200 with null for an unknown node.
	ns := out.NodeServices
	if ns != nil && (ns.Services == nil || flt != nil) {
		// A copy: on a server agent ns is the state store's.
		c := *ns
		if c.Services, err = filterMap(flt, c.Services); err != nil {
			return err
		}
		if c.Services == nil {
			c.Services = map[string]*structs.NodeService{}
		}
		ns = &c
	}
	return writeJSON(w, r, ns)
}

// filterServices applies a ?filter of /v1/catalog/services, whose
// selectors are those of a /v1/catalog/service row (Consul filters the
// service instances, then lists the services that still have one, with
// the tags of those instances). The list read has already blocked; each
// service's instances are read without blocking, with the same
// consistency, and rows on nodes outside ?node-meta are left out.
func (a *handler) filterServices(r *nethttp.Request, args *structs.DCSpecificRequest, services map[string][]string, f *filter) (map[string][]string, error) {
	out := make(map[string][]string, len(services))
	for name := range services {
		req := structs.ServiceSpecificRequest{Datacenter: args.Datacenter, ServiceName: name, QueryOptions: args.QueryOptions}
		req.MinQueryIndex, req.MaxQueryTime = 0, 0
		var sn structs.IndexedServiceNodes
		if err := a.b.RPC(r.Context(), structs.MethodCatalogServiceNodes, &req, &sn); err != nil {
			return nil, err
		}
		var tags []string
		seen := map[string]bool{}
		found := false
		for _, row := range sn.ServiceNodes {
			if !metaMatches(row.NodeMeta, args.NodeMetaFilters) {
				continue
			}
			ok, err := f.match(row)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			found = true
			for _, t := range row.ServiceTags {
				if !seen[t] {
					seen[t] = true
					tags = append(tags, t)
				}
			}
		}
		if found {
			out[name] = nonNil(tags)
		}
	}
	return out, nil
}

func metaMatches(meta, want map[string]string) bool {
	for k, v := range want {
		if got, ok := meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// parseServiceRequest reads a service path argument with ?tag and ?passing.
func (a *handler) parseServiceRequest(r *nethttp.Request, service string) (structs.ServiceSpecificRequest, error) {
	args := structs.ServiceSpecificRequest{ServiceName: service}
	if err := validName("service name", service); err != nil {
		return args, err
	}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return args, err
	}
	q := r.URL.Query()
	if _, ok := q["tag"]; ok {
		args.ServiceTag, args.TagFilter = q.Get("tag"), true
	}
	passing, err := boolParam(q, "passing", false)
	if err != nil {
		return args, err
	}
	args.PassingOnly = passing
	return args, nil
}

// parseNodeMeta reads ?node-meta=key:value filters.
func parseNodeMeta(r *nethttp.Request, out *map[string]string) error {
	vs := r.URL.Query()["node-meta"]
	if len(vs) == 0 {
		return nil
	}
	m := make(map[string]string, len(vs))
	for _, v := range vs {
		k, val, ok := strings.Cut(v, ":")
		if !ok || k == "" {
			return badRequest("Invalid node-meta filter %q: want key:value", v)
		}
		m[k] = val
	}
	*out = m
	return nil
}

// nonNil makes empty lists encode as [] (Consul never answers null lists).
// Replies of a server agent's in-process RPC point into the state store,
// which readers never write: normalise copies, never the rows themselves.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
