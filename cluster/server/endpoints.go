package server

import (
	"context"
	"fmt"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
)

// endpoint is one RPC method, callable locally (typed values, no encoding)
// or over the wire.
type endpoint struct {
	local func(ctx context.Context, args, reply any) error
}

// handle registers fn for method both for local calls (RPC) and on the
// wire (rpc.Server).
func handle[A, R any](s *Server, method string, fn func(ctx context.Context, args *A, reply *R) error) {
	s.endpoints[method] = endpoint{local: func(ctx context.Context, args, reply any) error {
		a, ok := args.(*A)
		if !ok {
			return fmt.Errorf("server: %s: args are %T, want %T", method, args, new(A))
		}
		r, ok := reply.(*R)
		if !ok {
			return fmt.Errorf("server: %s: reply is %T, want %T", method, reply, new(R))
		}
		return fn(ctx, a, r)
	}}
	s.rpcSrv.Handle(method, func(ctx context.Context, dec rpc.Decoder) (any, error) {
		var a A
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("decode %s request: %w", method, err)
		}
		var r R
		if err := fn(ctx, &a, &r); err != nil {
			return nil, err
		}
		return &r, nil
	})
}

// RPC runs method in-process, exactly as a remote caller would see it.
func (s *Server) RPC(ctx context.Context, method string, args, reply any) error {
	e, ok := s.endpoints[method]
	if !ok {
		return fmt.Errorf("server: unknown method %q", method)
	}
	return e.local(ctx, args, reply)
}

var (
	nodeTables    = []state.Table{state.TableNodes}
	serviceTables = []state.Table{state.TableNodes, state.TableServices}
	healthTables  = []state.Table{state.TableNodes, state.TableServices, state.TableChecks}
	checkTables   = []state.Table{state.TableChecks}
	kvTables      = []state.Table{state.TableKVS}
)

func (s *Server) registerEndpoints() {
	s.endpoints = map[string]endpoint{}

	handle(s, structs.MethodCatalogRegister, func(ctx context.Context, a *structs.RegisterRequest, r *structs.WriteResponse) error {
		if a.Node == "" {
			return structs.ErrMissingNode
		}
		if a.Address == "" && !a.SkipNodeUpdate {
			return structs.ErrMissingAddress
		}
		return s.write(ctx, structs.MethodCatalogRegister, a.Datacenter, structs.RegisterRequestType, a, r)
	})
	handle(s, structs.MethodCatalogDeregister, func(ctx context.Context, a *structs.DeregisterRequest, r *structs.WriteResponse) error {
		if a.Node == "" {
			return structs.ErrMissingNode
		}
		return s.write(ctx, structs.MethodCatalogDeregister, a.Datacenter, structs.DeregisterRequestType, a, r)
	})
	handle(s, structs.MethodKVSApply, func(ctx context.Context, a *structs.KVSRequest, r *structs.WriteResponse) error {
		if a.DirEnt.Key == "" && a.Op != structs.KVDeleteTree {
			return fmt.Errorf("missing key")
		}
		return s.write(ctx, structs.MethodKVSApply, a.Datacenter, structs.KVSRequestType, a, r)
	})
	handle(s, structs.MethodCatalogListDatacenters, func(ctx context.Context, a *structs.DCSpecificRequest, r *[]string) error {
		*r = s.Datacenters()
		return nil
	})
	handle(s, structs.MethodCatalogListNodes, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.IndexedNodes) error {
		return s.read(ctx, structs.MethodCatalogListNodes, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, nodeTables, func(st *state.Store) (uint64, error) {
			idx, nodes := st.Nodes()
			r.Nodes = filterNodeMeta(nodes, a.NodeMetaFilters)
			return idx, nil
		})
	})
	handle(s, structs.MethodCatalogListServices, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.IndexedServices) error {
		return s.read(ctx, structs.MethodCatalogListServices, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, serviceTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.Services = st.Services()
			return idx, nil
		})
	})
	handle(s, structs.MethodCatalogServiceNodes, func(ctx context.Context, a *structs.ServiceSpecificRequest, r *structs.IndexedServiceNodes) error {
		return s.read(ctx, structs.MethodCatalogServiceNodes, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, serviceTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.ServiceNodes = st.ServiceNodes(a.ServiceName, a.ServiceTag)
			return idx, nil
		})
	})
	handle(s, structs.MethodCatalogNodeServices, func(ctx context.Context, a *structs.NodeSpecificRequest, r *structs.IndexedNodeServices) error {
		return s.read(ctx, structs.MethodCatalogNodeServices, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, serviceTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.NodeServices = st.NodeServices(a.Node)
			return idx, nil
		})
	})
	handle(s, structs.MethodHealthServiceNodes, func(ctx context.Context, a *structs.ServiceSpecificRequest, r *structs.IndexedCheckServiceNodes) error {
		return s.read(ctx, structs.MethodHealthServiceNodes, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, healthTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.Nodes = st.CheckServiceNodes(a.ServiceName, a.ServiceTag, a.PassingOnly)
			return idx, nil
		})
	})
	handle(s, structs.MethodHealthNodeChecks, func(ctx context.Context, a *structs.NodeSpecificRequest, r *structs.IndexedHealthChecks) error {
		return s.read(ctx, structs.MethodHealthNodeChecks, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, checkTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.HealthChecks = st.NodeChecks(a.Node)
			return idx, nil
		})
	})
	handle(s, structs.MethodHealthServiceChecks, func(ctx context.Context, a *structs.ServiceSpecificRequest, r *structs.IndexedHealthChecks) error {
		return s.read(ctx, structs.MethodHealthServiceChecks, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, checkTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.HealthChecks = st.ServiceChecks(a.ServiceName)
			return idx, nil
		})
	})
	handle(s, structs.MethodHealthChecksInState, func(ctx context.Context, a *structs.ChecksInStateRequest, r *structs.IndexedHealthChecks) error {
		return s.read(ctx, structs.MethodHealthChecksInState, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, checkTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.HealthChecks = st.ChecksInState(a.State)
			return idx, nil
		})
	})
	handle(s, structs.MethodKVSGet, func(ctx context.Context, a *structs.KeyRequest, r *structs.IndexedDirEntries) error {
		return s.read(ctx, structs.MethodKVSGet, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, kvTables, func(st *state.Store) (uint64, error) {
			idx, e := st.KVSGet(a.Key)
			r.Entries = nil
			if e != nil {
				r.Entries = []*structs.DirEntry{e}
			}
			return idx, nil
		})
	})
	handle(s, structs.MethodKVSList, func(ctx context.Context, a *structs.KeyRequest, r *structs.IndexedDirEntries) error {
		return s.read(ctx, structs.MethodKVSList, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, kvTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.Entries = st.KVSList(a.Key)
			return idx, nil
		})
	})
	handle(s, structs.MethodKVSListKeys, func(ctx context.Context, a *structs.KeyRequest, r *structs.IndexedKeyList) error {
		return s.read(ctx, structs.MethodKVSListKeys, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r, kvTables, func(st *state.Store) (uint64, error) {
			var idx uint64
			idx, r.Keys = st.KVSListKeys(a.Key, a.Separator)
			return idx, nil
		})
	})
	handle(s, structs.MethodEventFire, func(ctx context.Context, a *structs.EventFireRequest, r *structs.WriteResponse) error {
		if a.Datacenter != "" && a.Datacenter != s.cfg.Datacenter {
			return s.forwardDC(ctx, structs.MethodEventFire, a.Datacenter, a, r)
		}
		if err := s.FireUserEvent(&a.Event); err != nil {
			return err
		}
		r.Success = true
		return nil
	})
	handle(s, structs.MethodStatusLeader, func(ctx context.Context, a *structs.DCSpecificRequest, r *string) error {
		if a.Datacenter != "" && a.Datacenter != s.cfg.Datacenter {
			return s.forwardDC(ctx, structs.MethodStatusLeader, a.Datacenter, a, r)
		}
		*r = s.Leader()
		return nil
	})
	handle(s, structs.MethodStatusPeers, func(ctx context.Context, a *structs.DCSpecificRequest, r *[]string) error {
		if a.Datacenter != "" && a.Datacenter != s.cfg.Datacenter {
			return s.forwardDC(ctx, structs.MethodStatusPeers, a.Datacenter, a, r)
		}
		f := s.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		*r = (*r)[:0]
		for _, srv := range f.Configuration().Servers {
			*r = append(*r, string(srv.Address))
		}
		return nil
	})
	handle(s, structs.MethodOperatorRaftConfig, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.RaftConfigurationResponse) error {
		if done, err := s.forward(ctx, structs.MethodOperatorRaftConfig, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		f := s.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		leader := raft.ServerAddress(s.Leader())
		r.Index = f.Index()
		r.Servers = nil
		for _, srv := range f.Configuration().Servers {
			r.Servers = append(r.Servers, &structs.RaftServer{
				ID: string(srv.ID), Node: string(srv.ID), Address: string(srv.Address),
				Leader: srv.Address == leader, Voter: srv.Suffrage == raft.Voter, Protocol: "3",
			})
		}
		return nil
	})
	handle(s, structs.MethodStatusPing, func(ctx context.Context, a *struct{}, r *struct{}) error { return nil })
	s.registerOperatorEndpoints()
}

func filterNodeMeta(nodes []*structs.Node, want map[string]string) []*structs.Node {
	if len(want) == 0 {
		return nodes
	}
	out := nodes[:0:0]
	for _, n := range nodes {
		ok := true
		for k, v := range want {
			if n.Meta[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, n)
		}
	}
	return out
}
