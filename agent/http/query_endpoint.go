package http

import (
	"encoding/json"
	"errors"
	nethttp "net/http"
	"strconv"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

// queryBody is Consul's PreparedQueryDefinition as clients send it. Fields
// Cairn does not model (Enterprise namespaces and partitions, peering,
// Connect, sameness groups) are accepted and ignored.
type queryBody struct {
	ID       string
	Name     string
	Session  string
	Token    string
	Service  queryServiceBody
	DNS      structs.QueryDNSOptions
	Template structs.QueryTemplate

	CreateIndex uint64
	ModifyIndex uint64
}

type queryServiceBody struct {
	Service        string
	SamenessGroup  string
	Namespace      string
	Partition      string
	Near           string
	Failover       queryFailoverBody
	IgnoreCheckIDs []string
	OnlyPassing    bool
	Tags           []string
	NodeMeta       map[string]string
	ServiceMeta    map[string]string
	Connect        bool
	Peer           string
}

type queryFailoverBody struct {
	NearestN    int
	Datacenters []string
	Targets     json.RawMessage
}

func (b *queryBody) toStructs() *structs.PreparedQuery {
	return &structs.PreparedQuery{
		ID: b.ID, Name: b.Name, Session: b.Session, Token: b.Token, Template: b.Template, DNS: b.DNS,
		Service: structs.ServiceQuery{
			Service: b.Service.Service, Near: b.Service.Near, OnlyPassing: b.Service.OnlyPassing,
			IgnoreCheckIDs: b.Service.IgnoreCheckIDs, Tags: b.Service.Tags,
			NodeMeta: b.Service.NodeMeta, ServiceMeta: b.Service.ServiceMeta,
			Failover: structs.QueryFailover{NearestN: b.Service.Failover.NearestN, Datacenters: b.Service.Failover.Datacenters},
		},
	}
}

// queryJSON is a query as the API shows it: lists never null, and a
// stored Token redacted as Consul shows it to non-management callers
// (Cairn shows it to no one: the token would otherwise be readable by
// anyone who can list queries).
func queryJSON(q *structs.PreparedQuery) *structs.PreparedQuery {
	c := *q
	if c.Token != "" {
		c.Token = "<hidden>"
	}
	c.Service.Tags = nonNil(c.Service.Tags)
	c.Service.IgnoreCheckIDs = nonNil(c.Service.IgnoreCheckIDs)
	c.Service.Failover.Datacenters = nonNil(c.Service.Failover.Datacenters)
	return &c
}

// queryRoot serves /v1/query: GET lists, POST creates.
func (a *handler) queryRoot(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	if r.Method == nethttp.MethodGet {
		var args structs.DCSpecificRequest
		if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
			return err
		}
		var out structs.IndexedPreparedQueries
		if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryList, &args, &out); err != nil {
			return err
		}
		setQueryMeta(w, &out.QueryMeta)
		list := make([]*structs.PreparedQuery, 0, len(out.Queries))
		for _, q := range out.Queries {
			list = append(list, queryJSON(q))
		}
		return writeJSON(w, r, list)
	}
	var body queryBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	args := structs.PreparedQueryRequest{Datacenter: a.datacenter(r.URL.Query()), Op: structs.PreparedQueryCreate, Query: body.toStructs()}
	args.Query.ID = ""
	if err := validateQueryWrite(&args); err != nil {
		return err
	}
	var id string
	if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryApply, &args, &id); err != nil {
		return queryErr(err)
	}
	return writeJSON(w, r, map[string]string{"ID": id})
}

func validateQueryWrite(args *structs.PreparedQueryRequest) error {
	if err := args.Validate(); err != nil {
		return badRequest("Invalid prepared query: %v", strings.TrimPrefix(err.Error(), structs.ErrInvalidRequest.Error()+": "))
	}
	return nil
}

// queryErr makes "no such query" a 404.
func queryErr(err error) error {
	if errors.Is(err, structs.ErrQueryNotFound) {
		return &httpError{code: nethttp.StatusNotFound, msg: structs.ErrQueryNotFound.Error()}
	}
	return err
}

// querySpecific serves /v1/query/<id> (GET, PUT, DELETE) and
// /v1/query/<id|name>/{execute,explain} (GET).
func (a *handler) querySpecific(w nethttp.ResponseWriter, r *nethttp.Request, rest string) error {
	id, sub, _ := strings.Cut(rest, "/")
	if err := validName("query ID", id); err != nil {
		return err
	}
	switch sub {
	case "":
	case "execute", "explain":
		if r.Method != nethttp.MethodGet {
			w.Header().Set("Allow", nethttp.MethodGet)
			return &httpError{code: nethttp.StatusMethodNotAllowed, msg: "Method " + r.Method + " not allowed"}
		}
		return a.queryExecute(w, r, id, sub == "explain")
	default:
		return &httpError{code: nethttp.StatusNotFound, msg: "Unknown API path " + strconv.Quote(r.URL.Path)}
	}
	dc := a.datacenter(r.URL.Query())
	switch r.Method {
	case nethttp.MethodGet:
		args := structs.PreparedQuerySpecificRequest{QueryID: id}
		if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
			return err
		}
		var out structs.IndexedPreparedQueries
		if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryGet, &args, &out); err != nil {
			return err
		}
		setQueryMeta(w, &out.QueryMeta)
		if len(out.Queries) == 0 {
			return queryErr(structs.ErrQueryNotFound)
		}
		return writeJSON(w, r, []*structs.PreparedQuery{queryJSON(out.Queries[0])})
	case nethttp.MethodPut:
		var body queryBody
		if err := decodeBody(r, &body); err != nil {
			return err
		}
		args := structs.PreparedQueryRequest{Datacenter: dc, Op: structs.PreparedQueryUpdate, Query: body.toStructs()}
		args.Query.ID = id
		if err := validateQueryWrite(&args); err != nil {
			return err
		}
		var out string
		if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryApply, &args, &out); err != nil {
			return queryErr(err)
		}
		return writeEmpty(w)
	case nethttp.MethodDelete:
		args := structs.PreparedQueryRequest{Datacenter: dc, Op: structs.PreparedQueryDelete, Query: &structs.PreparedQuery{ID: id}}
		var out string
		if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryApply, &args, &out); err != nil {
			return queryErr(err)
		}
		return writeEmpty(w)
	}
	w.Header().Set("Allow", "GET, PUT, DELETE")
	return &httpError{code: nethttp.StatusMethodNotAllowed, msg: "Method " + r.Method + " not allowed"}
}

// queryExecute runs (or explains) a query; ?near (a node or _agent) and
// ?limit as Consul.
func (a *handler) queryExecute(w nethttp.ResponseWriter, r *nethttp.Request, idOrName string, explain bool) error {
	args := structs.PreparedQueryExecuteRequest{QueryIDOrName: idOrName,
		Agent: structs.QuerySource{Datacenter: a.b.Datacenter(), Node: a.b.NodeName()}}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	q := r.URL.Query()
	args.Near = q.Get("near")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("Invalid value %q for ?limit", v)
		}
		args.Limit = n
	}
	if explain {
		var out structs.PreparedQueryExplainResponse
		if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryExplain, &args, &out); err != nil {
			return queryErr(err)
		}
		setQueryMeta(w, &out.QueryMeta)
		return writeJSON(w, r, map[string]any{"Query": queryJSON(&out.Query)})
	}
	var out structs.PreparedQueryExecuteResponse
	if err := a.b.RPC(r.Context(), structs.MethodPreparedQueryExecute, &args, &out); err != nil {
		return queryErr(err)
	}
	setQueryMeta(w, &out.QueryMeta)
	nodes := make([]structs.CheckServiceNode, 0, len(out.Nodes))
	for _, n := range out.Nodes {
		n.Checks = checksForJSON(n.Checks)
		if n.Service != nil && n.Service.Tags == nil {
			s := *n.Service
			s.Tags = []string{}
			n.Service = &s
		}
		if a.translateWAN(out.Datacenter) {
			n.Node = wanNode(n.Node)
		}
		nodes = append(nodes, n)
	}
	return writeJSON(w, r, map[string]any{
		"Service": out.Service, "Nodes": nodes, "DNS": out.DNS,
		"Datacenter": out.Datacenter, "Failovers": out.Failovers,
	})
}
