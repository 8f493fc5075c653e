package cache

import (
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
)

// instances converts catalog rows to resolver instances once per fetch.
func instances(nodes []structs.CheckServiceNode) []resolver.Instance {
	return AppendInstances(make([]resolver.Instance, 0, len(nodes)), nodes)
}

// AppendInstances appends catalog rows to dst as resolver instances,
// sharing the (immutable) maps and slices of the rows rather than copying
// them. Servers use it per query on their local state, clients per fetch.
func AppendInstances(out []resolver.Instance, nodes []structs.CheckServiceNode) []resolver.Instance {
	for i := range nodes {
		n := &nodes[i]
		if n.Node == nil || n.Service == nil {
			continue
		}
		in := resolver.Instance{
			Node:      ToNode(n.Node),
			ServiceID: n.Service.ID,
			Service:   n.Service.Service,
			Address:   n.Service.Address,
			Port:      n.Service.Port,
			Tags:      n.Service.Tags,
			Meta:      n.Service.Meta,
			Status:    structs.AggregateStatus(n.Checks),
		}
		if w := n.Service.Weights; w != nil {
			in.Weights = resolver.Weights{Passing: w.Passing, Warning: w.Warning}
		}
		out = append(out, in)
	}
	return out
}

// ToNode converts a catalog node to the resolver's view of it.
func ToNode(n *structs.Node) resolver.Node {
	return resolver.Node{Name: n.Node, Address: n.Address, Datacenter: n.Datacenter, Meta: n.Meta}
}
