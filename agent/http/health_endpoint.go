package http

import (
	nethttp "net/http"

	"github.com/cairnd/cairn/cluster/structs"
)

func (a *handler) healthNodeChecks(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	args := structs.NodeSpecificRequest{Node: node}
	if err := validName("node name", node); err != nil {
		return err
	}
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthNodeChecks, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out, flt)
}

func (a *handler) healthServiceChecks(w nethttp.ResponseWriter, r *nethttp.Request, service string) error {
	args := structs.ServiceSpecificRequest{ServiceName: service}
	if err := validName("service name", service); err != nil {
		return err
	}
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthServiceChecks, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out, flt)
}

func (a *handler) healthChecksInState(w nethttp.ResponseWriter, r *nethttp.Request, state string) error {
	switch state {
	case structs.HealthAny, structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	case "":
		return badRequest("Missing check state")
	default:
		return badRequest("Invalid check state %q", state)
	}
	args := structs.ChecksInStateRequest{State: state}
	flt, err := a.readArgs(r, &args.Datacenter, &args.QueryOptions)
	if err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthChecksInState, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out, flt)
}

func writeChecks(w nethttp.ResponseWriter, r *nethttp.Request, out *structs.IndexedHealthChecks, flt *filter) error {
	checks, err := filterSlice(flt, out.HealthChecks)
	if err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	return writeJSON(w, r, checksForJSON(checks))
}

// checksForJSON returns checks with [] for a nil ServiceTags, in a new
// slice of copies where one is needed: on a server agent the checks are
// the state store's, which readers never write.
func checksForJSON(in []*structs.HealthCheck) []*structs.HealthCheck {
	out := make([]*structs.HealthCheck, len(in))
	for i, c := range in {
		if c.ServiceTags == nil {
			cc := *c
			cc.ServiceTags = []string{}
			c = &cc
		}
		out[i] = c
	}
	return out
}

func (a *handler) healthServiceNodes(w nethttp.ResponseWriter, r *nethttp.Request, service string) error {
	args, err := a.parseServiceRequest(r, service)
	if err != nil {
		return err
	}
	flt, err := parseFilter(r)
	if err != nil {
		return err
	}
	var out structs.IndexedCheckServiceNodes
	if err := a.b.RPC(r.Context(), structs.MethodHealthServiceNodes, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	// A new slice of copies: on a server agent the rows are the state
	// store's. The server filters PassingOnly already; filtering again
	// keeps the promise even if a backend ignores it.
	nodes := make([]structs.CheckServiceNode, 0, len(out.Nodes))
	for _, n := range out.Nodes {
		if args.PassingOnly && n.AggregatedStatus() != structs.HealthPassing {
			continue
		}
		if ok, err := flt.match(&n); err != nil {
			return err
		} else if !ok {
			continue
		}
		n.Checks = checksForJSON(n.Checks)
		if n.Service != nil && n.Service.Tags == nil {
			s := *n.Service
			s.Tags = []string{}
			n.Service = &s
		}
		if a.translateWAN(args.Datacenter) {
			n.Node = wanNode(n.Node)
		}
		nodes = append(nodes, n)
	}
	if err := sortNear(a, r, args.Datacenter, nodes, func(n structs.CheckServiceNode) string { return n.Node.Node }); err != nil {
		return err
	}
	return writeJSON(w, r, nodes)
}
