package http

import (
	nethttp "net/http"

	"github.com/cairnd/cairn/cluster/structs"
)

// operatorRaftPeer is DELETE /v1/operator/raft/peer?id=|?address=.
func (a *handler) operatorRaftPeer(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	q := r.URL.Query()
	args := structs.RaftRemovePeerRequest{Datacenter: a.datacenter(q), ID: q.Get("id"), Address: q.Get("address")}
	if (args.ID == "") == (args.Address == "") {
		return badRequest("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")
	}
	var out struct{}
	if err := a.b.RPC(r.Context(), structs.MethodOperatorRaftRemovePeer, &args, &out); err != nil {
		return err
	}
	w.WriteHeader(nethttp.StatusOK)
	return nil
}

// operatorRaftTransferLeader is POST /v1/operator/raft/transfer-leader
// [?id=], Consul's: it answers {"Success": true} once another server leads.
func (a *handler) operatorRaftTransferLeader(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	q := r.URL.Query()
	args := structs.RaftTransferLeaderRequest{Datacenter: a.datacenter(q), ID: q.Get("id")}
	var out structs.TransferLeaderResponse
	if err := a.b.RPC(r.Context(), structs.MethodOperatorRaftTransferLeader, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, out)
}

// operatorAutopilotConfiguration is GET /v1/operator/autopilot/configuration.
func (a *handler) operatorAutopilotConfiguration(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.AutopilotConfig
	if err := a.b.RPC(r.Context(), structs.MethodOperatorAutopilotGetConfig, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, &out)
}

// operatorAutopilotHealth is GET /v1/operator/autopilot/health: 200 when
// every server is healthy, 429 with the same body otherwise, as Consul.
func (a *handler) operatorAutopilotHealth(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.OperatorHealthReply
	if err := a.b.RPC(r.Context(), structs.MethodOperatorServerHealth, &args, &out); err != nil {
		return err
	}
	out.Servers = nonNil(out.Servers)
	if !out.Healthy {
		return writeJSONStatus(w, r, nethttp.StatusTooManyRequests, &out)
	}
	return writeJSON(w, r, &out)
}

// writeJSONStatus is writeJSON with another status code.
func writeJSONStatus(w nethttp.ResponseWriter, r *nethttp.Request, code int, v any) error {
	return writeJSON(&statusWriter{ResponseWriter: w, code: code}, r, v)
}

// statusWriter replaces the 200 writeJSON sends with code.
type statusWriter struct {
	nethttp.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }
