package http

import (
	nethttp "net/http"

	"github.com/cairnd/cairn/cluster/structs"
)

func (a *handler) statusLeader(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var leader string
	if err := a.b.RPC(r.Context(), structs.MethodStatusLeader, &args, &leader); err != nil {
		return err
	}
	setMeta(w, 0, leader != "", 0)
	return writeJSON(w, r, leader)
}

func (a *handler) statusPeers(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var peers []string
	if err := a.b.RPC(r.Context(), structs.MethodStatusPeers, &args, &peers); err != nil {
		return err
	}
	return writeJSON(w, r, nonNil(peers))
}

func (a *handler) operatorRaftConfiguration(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.RaftConfigurationResponse
	if err := a.b.RPC(r.Context(), structs.MethodOperatorRaftConfig, &args, &out); err != nil {
		return err
	}
	setMeta(w, out.Index, true, 0)
	out.Servers = nonNil(out.Servers)
	return writeJSON(w, r, &out)
}
