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
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthNodeChecks, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out)
}

func (a *handler) healthServiceChecks(w nethttp.ResponseWriter, r *nethttp.Request, service string) error {
	args := structs.ServiceSpecificRequest{ServiceName: service}
	if err := validName("service name", service); err != nil {
		return err
	}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthServiceChecks, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out)
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
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedHealthChecks
	if err := a.b.RPC(r.Context(), structs.MethodHealthChecksInState, &args, &out); err != nil {
		return err
	}
	return writeChecks(w, r, &out)
}

func writeChecks(w nethttp.ResponseWriter, r *nethttp.Request, out *structs.IndexedHealthChecks) error {
	setQueryMeta(w, &out.QueryMeta)
	for _, c := range out.HealthChecks {
		c.ServiceTags = nonNil(c.ServiceTags)
	}
	return writeJSON(w, r, nonNil(out.HealthChecks))
}

func (a *handler) healthServiceNodes(w nethttp.ResponseWriter, r *nethttp.Request, service string) error {
	args, err := a.parseServiceRequest(r, service)
	if err != nil {
		return err
	}
	var out structs.IndexedCheckServiceNodes
	if err := a.b.RPC(r.Context(), structs.MethodHealthServiceNodes, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	nodes := nonNil(out.Nodes)
	if args.PassingOnly {
		// The server filters already; filtering again keeps the promise
		// even if a backend ignores PassingOnly.
		kept := nodes[:0:0]
		for _, n := range nodes {
			if n.AggregatedStatus() == structs.HealthPassing {
				kept = append(kept, n)
			}
		}
		nodes = kept
	}
	for i := range nodes {
		nodes[i].Checks = nonNil(nodes[i].Checks)
		if s := nodes[i].Service; s != nil {
			s.Tags = nonNil(s.Tags)
		}
	}
	return writeJSON(w, r, nodes)
}
