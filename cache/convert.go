package cache

import (
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
)

// instances converts catalog rows to resolver instances once per fetch,
// sharing the (immutable) maps and slices of the decoded reply.
func instances(nodes []structs.CheckServiceNode) []resolver.Instance {
	out := make([]resolver.Instance, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.Node == nil || n.Service == nil {
			continue
		}
		in := resolver.Instance{
			Node:      toNode(n.Node),
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

func toNode(n *structs.Node) resolver.Node {
	return resolver.Node{Name: n.Node, Address: n.Address, Datacenter: n.Datacenter, Meta: n.Meta}
}
