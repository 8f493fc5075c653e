package cache

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
)

// LocalState is a server's own state store, as Source reads it.
type LocalState interface {
	CheckServiceNodes(service, tag string, passingOnly bool) (uint64, []structs.CheckServiceNode)
	Node(name string) (uint64, *structs.Node)
	Nodes() (uint64, []*structs.Node)
	Services() (uint64, map[string][]string)
}

// Source implements resolver.Catalog without keeping anything: every
// lookup reads the catalog. It is the one place catalog rows become
// resolver values and "no path to datacenter" becomes
// resolver.ErrNoSuchDatacenter. Server agents hand it to the resolver as
// is; a client's Catalog fetches through one.
type Source struct {
	// Datacenter is the agent's own; lookups with dc "" mean it.
	Datacenter string
	// RPC sends one read RPC to the server tier: in-process on servers,
	// through the forwarder on clients.
	RPC RPCFunc
	// Local returns the server's state store, read directly for lookups in
	// Datacenter when AllowStale (stale reads, as Consul's DNS with
	// allow_stale). nil on client agents: everything goes through RPC.
	Local func() LocalState
	// AllowStale lets any server answer (dns_config.allow_stale).
	AllowStale bool
	// NodeName is the agent's node, the source of prepared queries with
	// Near = "_agent".
	NodeName string
}

var _ resolver.Catalog = (*Source)(nil)

func (s *Source) isLocal(dc string) bool {
	return s.Local != nil && (dc == "" || dc == s.Datacenter) && s.AllowStale
}

func (s *Source) query() structs.QueryOptions { return structs.QueryOptions{AllowStale: s.AllowStale} }

// mapErr turns the server tier's "no path to datacenter" into the
// resolver's NXDOMAIN error; every other error stays a SERVFAIL.
func mapErr(err error) error {
	if errors.Is(err, structs.ErrNoPathToDC) {
		return resolver.ErrNoSuchDatacenter
	}
	return err
}

// serviceNodes appends the instances of service in dc to dst; index is
// the raft index of the answer.
func (s *Source) serviceNodes(ctx context.Context, dc, service, tag string, passingOnly bool, q structs.QueryOptions, dst []resolver.Instance) (index uint64, _ []resolver.Instance, _ error) {
	var nodes []structs.CheckServiceNode
	if s.isLocal(dc) {
		index, nodes = s.Local().CheckServiceNodes(service, tag, passingOnly)
	} else {
		var out structs.IndexedCheckServiceNodes
		err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{
			Datacenter: dc, ServiceName: service, ServiceTag: tag, TagFilter: tag != "",
			PassingOnly: passingOnly, QueryOptions: q,
		}, &out)
		if err != nil {
			return 0, dst, mapErr(err)
		}
		index, nodes = out.Index, out.Nodes
	}
	return index, appendInstances(dst, nodes, s.Datacenter), nil
}

// node returns the node called name in dc, nil if there is none.
func (s *Source) node(ctx context.Context, dc, name string, q structs.QueryOptions) (uint64, *resolver.Node, error) {
	var index uint64
	var n *structs.Node
	if s.isLocal(dc) {
		index, n = s.Local().Node(name)
	} else {
		var out structs.IndexedNodeServices
		err := s.RPC(ctx, structs.MethodCatalogNodeServices, &structs.NodeSpecificRequest{Datacenter: dc, Node: name, QueryOptions: q}, &out)
		if err != nil {
			return 0, nil, mapErr(err)
		}
		index = out.Index
		if out.NodeServices != nil {
			n = out.NodeServices.Node
		}
	}
	if n == nil {
		return index, nil, nil
	}
	rn := toNode(n)
	return index, &rn, nil
}

// nodes returns every node of dc.
func (s *Source) nodes(ctx context.Context, dc string, q structs.QueryOptions) (uint64, []resolver.Node, error) {
	var index uint64
	var nodes []*structs.Node
	if s.isLocal(dc) {
		index, nodes = s.Local().Nodes()
	} else {
		var out structs.IndexedNodes
		if err := s.RPC(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{Datacenter: dc, QueryOptions: q}, &out); err != nil {
			return 0, nil, mapErr(err)
		}
		index, nodes = out.Index, out.Nodes
	}
	res := make([]resolver.Node, 0, len(nodes))
	for _, n := range nodes {
		res = append(res, toNode(n))
	}
	return index, res, nil
}

// services returns the service names (and tags) of dc.
func (s *Source) services(ctx context.Context, dc string, q structs.QueryOptions) (map[string][]string, error) {
	if s.isLocal(dc) {
		_, services := s.Local().Services()
		return services, nil
	}
	var out structs.IndexedServices
	if err := s.RPC(ctx, structs.MethodCatalogListServices, &structs.DCSpecificRequest{Datacenter: dc, QueryOptions: q}, &out); err != nil {
		return nil, mapErr(err)
	}
	return out.Services, nil
}

// ServiceNodes implements resolver.Catalog.
func (s *Source) ServiceNodes(ctx context.Context, dc, service, tag string, passingOnly bool, dst []resolver.Instance) ([]resolver.Instance, error) {
	_, insts, err := s.serviceNodes(ctx, dc, service, tag, passingOnly, s.query(), dst)
	return insts, err
}

// Node implements resolver.Catalog.
func (s *Source) Node(ctx context.Context, dc, name string) (*resolver.Node, error) {
	_, n, err := s.node(ctx, dc, name, s.query())
	return n, err
}

// Nodes implements resolver.Catalog.
func (s *Source) Nodes(ctx context.Context, dc string) ([]resolver.Node, error) {
	_, nodes, err := s.nodes(ctx, dc, s.query())
	return nodes, err
}

// ServicesByAddress implements resolver.Catalog.
func (s *Source) ServicesByAddress(ctx context.Context, dc, addr string) ([]resolver.Instance, error) {
	services, err := s.services(ctx, dc, s.query())
	if err != nil {
		return nil, err
	}
	return servicesByAddress(ctx, services, addr, func(ctx context.Context, name string) ([]resolver.Instance, error) {
		return s.ServiceNodes(ctx, dc, name, "", false, nil)
	})
}

// servicesByAddress is the reverse scan of PTR lookups: the instances of
// every service whose service address is addr. PTR lookups for service
// addresses are rare, so no reverse index is kept.
func servicesByAddress(ctx context.Context, services map[string][]string, addr string,
	instances func(ctx context.Context, service string) ([]resolver.Instance, error)) ([]resolver.Instance, error) {
	want := net.ParseIP(addr)
	var res []resolver.Instance
	for name := range services {
		insts, err := instances(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			if ip := net.ParseIP(in.Address); in.Address == addr || (ip != nil && want != nil && ip.Equal(want)) {
				res = append(res, in)
			}
		}
	}
	return res, nil
}

// appendInstances appends catalog rows to dst as resolver instances,
// sharing the (immutable) maps and slices of the rows rather than copying
// them: servers convert per query on their local state, clients per fetch.
//
// Strings equal to one already held are shared rather than kept twice:
// a service address that is its node's, and a datacenter named dc (the
// agent's: pass it in). A client agent keeps these for every name it
// caches, and each decoded string is an allocation of its own.
func appendInstances(dst []resolver.Instance, nodes []structs.CheckServiceNode, dc string) []resolver.Instance {
	dst = slices.Grow(dst, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.Node == nil || n.Service == nil {
			continue
		}
		in := resolver.Instance{
			Node:    toNode(n.Node),
			Service: n.Service.Service,
			Port:    n.Service.Port,
			Status:  structs.AggregateStatus(n.Checks),
		}
		in.Address = share(n.Service.Address, in.Node.Address)
		in.Node.Datacenter = share(in.Node.Datacenter, dc)
		if w := n.Service.Weights; w != nil {
			in.Weights = resolver.Weights{Passing: w.Passing, Warning: w.Warning}
		}
		dst = append(dst, in)
	}
	return dst
}

// share returns held if s has the same bytes, so the copy in s can be
// collected.
func share(s, held string) string {
	if s == held {
		return held
	}
	return s
}

// toNode converts a catalog node to the resolver's view of it.
func toNode(n *structs.Node) resolver.Node {
	return resolver.Node{Name: n.Node, Address: n.Address, WANAddress: n.TaggedAddresses["wan"],
		Datacenter: n.Datacenter, Meta: n.Meta}
}

// preparedQuery runs query name (ID or name) in dc. An unknown query is
// no instances, no error (NXDOMAIN, as Consul).
func (s *Source) preparedQuery(ctx context.Context, dc, name string, q structs.QueryOptions, dst []resolver.Instance) (uint64, []resolver.Instance, resolver.QueryAnswer, error) {
	qa := resolver.QueryAnswer{TTL: -1}
	var out structs.PreparedQueryExecuteResponse
	err := s.RPC(ctx, structs.MethodPreparedQueryExecute, &structs.PreparedQueryExecuteRequest{
		Datacenter: dc, QueryIDOrName: name, QueryOptions: q,
		Agent: structs.QuerySource{Datacenter: s.Datacenter, Node: s.NodeName},
	}, &out)
	if errors.Is(err, structs.ErrQueryNotFound) {
		return out.Index, dst, qa, nil
	}
	if err != nil {
		return 0, dst, qa, mapErr(err)
	}
	if out.DNS.TTL != "" {
		if d, err := time.ParseDuration(out.DNS.TTL); err == nil {
			qa.TTL = d
		}
	}
	qa.Ordered = out.Sorted
	return out.Index, appendInstances(dst, out.Nodes, s.Datacenter), qa, nil
}

// PreparedQuery implements resolver.QueryCatalog.
func (s *Source) PreparedQuery(ctx context.Context, dc, name string, dst []resolver.Instance) ([]resolver.Instance, resolver.QueryAnswer, error) {
	_, insts, qa, err := s.preparedQuery(ctx, dc, name, s.query(), dst)
	return insts, qa, err
}
