package agent

import (
	"context"
	"errors"
	"net"

	"github.com/cairnd/cairn/cache"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
)

// RPCFunc runs an RPC method: in-process on servers, through the forwarder
// on clients.
type RPCFunc func(ctx context.Context, method string, args, reply any) error

// dnsCatalog adapts the catalog to resolver.Catalog. On servers, lookups in
// the local datacenter read the state store directly (stale reads, as
// Consul's DNS with allow_stale); everything else goes through rpc.
type dnsCatalog struct {
	dc         string
	rpc        RPCFunc
	local      func() *state.Store // nil on client agents
	allowStale bool
}

var _ resolver.Catalog = (*dnsCatalog)(nil)

func (c *dnsCatalog) q() structs.QueryOptions {
	return structs.QueryOptions{AllowStale: c.allowStale}
}

func mapErr(err error) error {
	if errors.Is(err, structs.ErrNoPathToDC) {
		return resolver.ErrNoSuchDatacenter
	}
	return err
}

func (c *dnsCatalog) isLocal(dc string) bool {
	return c.local != nil && (dc == "" || dc == c.dc) && c.allowStale
}

func (c *dnsCatalog) ServiceNodes(ctx context.Context, dc, service, tag string, passingOnly bool, dst []resolver.Instance) ([]resolver.Instance, error) {
	var nodes []structs.CheckServiceNode
	if c.isLocal(dc) {
		_, nodes = c.local().CheckServiceNodes(service, tag, passingOnly)
	} else {
		var out structs.IndexedCheckServiceNodes
		err := c.rpc(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{
			Datacenter: dc, ServiceName: service, ServiceTag: tag, TagFilter: tag != "",
			PassingOnly: passingOnly, QueryOptions: c.q(),
		}, &out)
		if err != nil {
			return dst, mapErr(err)
		}
		nodes = out.Nodes
	}
	return cache.AppendInstances(dst, nodes), nil
}

func (c *dnsCatalog) Node(ctx context.Context, dc, name string) (*resolver.Node, error) {
	var n *structs.Node
	if c.isLocal(dc) {
		_, n = c.local().Node(name)
	} else {
		var out structs.IndexedNodeServices
		err := c.rpc(ctx, structs.MethodCatalogNodeServices, &structs.NodeSpecificRequest{Datacenter: dc, Node: name, QueryOptions: c.q()}, &out)
		if err != nil {
			return nil, mapErr(err)
		}
		if out.NodeServices != nil {
			n = out.NodeServices.Node
		}
	}
	if n == nil {
		return nil, nil
	}
	rn := cache.ToNode(n)
	return &rn, nil
}

func (c *dnsCatalog) listNodes(ctx context.Context, dc string) ([]*structs.Node, error) {
	if c.isLocal(dc) {
		_, nodes := c.local().Nodes()
		return nodes, nil
	}
	var out structs.IndexedNodes
	if err := c.rpc(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{Datacenter: dc, QueryOptions: c.q()}, &out); err != nil {
		return nil, mapErr(err)
	}
	return out.Nodes, nil
}

func (c *dnsCatalog) Nodes(ctx context.Context, dc string) ([]resolver.Node, error) {
	nodes, err := c.listNodes(ctx, dc)
	if err != nil {
		return nil, err
	}
	out := make([]resolver.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, cache.ToNode(n))
	}
	return out, nil
}

// ServicesByAddress scans every service of dc: PTR lookups for service
// addresses are rare, so no reverse index is kept.
func (c *dnsCatalog) ServicesByAddress(ctx context.Context, dc, addr string) ([]resolver.Instance, error) {
	var services map[string][]string
	if c.isLocal(dc) {
		_, services = c.local().Services()
	} else {
		var out structs.IndexedServices
		if err := c.rpc(ctx, structs.MethodCatalogListServices, &structs.DCSpecificRequest{Datacenter: dc, QueryOptions: c.q()}, &out); err != nil {
			return nil, mapErr(err)
		}
		services = out.Services
	}
	want := net.ParseIP(addr)
	var out []resolver.Instance
	for name := range services {
		insts, err := c.ServiceNodes(ctx, dc, name, "", false, nil)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			if ip := net.ParseIP(in.Address); in.Address == addr || (ip != nil && want != nil && ip.Equal(want)) {
				out = append(out, in)
			}
		}
	}
	return out, nil
}
