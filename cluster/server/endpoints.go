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
	inner := fn
	// Every call, local or remote, passes the request-rate limit (remote
	// calls only, limits.go) and the ACL gate first and has its reply
	// filtered after (acl.go).
	fn = func(ctx context.Context, args *A, reply *R) error {
		if err := s.rates.allow(ctx, method); err != nil {
			return err
		}
		authz, err := s.authorize(ctx, method, args)
		if err != nil {
			return err
		}
		if err := inner(ctx, args, reply); err != nil {
			return err
		}
		filterReply(authz, reply)
		return nil
	}
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

func (s *Server) registerEndpoints() {
	s.endpoints = map[string]endpoint{}
	shared := newBlockGroup(s.ctx, s.cfg.Registry, s.log)
	for _, register := range append(readEndpoints(), sessionReads()...) {
		register(s, shared)
	}
	s.registerWrites()
	s.registerSessionEndpoints()
	s.registerStatus()
	s.registerTxn()
	s.registerACLEndpoints()
	s.registerQueryEndpoints(shared)
}

// readEndpoints is the table of reads: each names its method once, the
// state it watches (its per-key index, see cluster/state) and how it fills
// the reply from a Store.
func readEndpoints() []func(*Server, *blockGroup) {
	return []func(*Server, *blockGroup){
		readEndpoint(structs.MethodCatalogListNodes,
			func(*structs.DCSpecificRequest) state.Key { return state.TablesKey(state.TableNodes) },
			func(st *state.Store, a *structs.DCSpecificRequest, r *structs.IndexedNodes) (idx uint64) {
				idx, r.Nodes = st.Nodes()
				r.Nodes = filterNodeMeta(r.Nodes, a.NodeMetaFilters)
				return idx
			}),
		readEndpoint(structs.MethodCatalogListServices,
			func(*structs.DCSpecificRequest) state.Key { return state.TablesKey(state.TableServices) },
			func(st *state.Store, a *structs.DCSpecificRequest, r *structs.IndexedServices) (idx uint64) {
				idx, r.Services = st.Services()
				return idx
			}),
		readEndpoint(structs.MethodCatalogServiceNodes,
			func(a *structs.ServiceSpecificRequest) state.Key { return state.ServiceKey(a.ServiceName) },
			func(st *state.Store, a *structs.ServiceSpecificRequest, r *structs.IndexedServiceNodes) (idx uint64) {
				idx, r.ServiceNodes = st.ServiceNodes(a.ServiceName, a.ServiceTag)
				return idx
			}),
		readEndpoint(structs.MethodCatalogNodeServices,
			func(a *structs.NodeSpecificRequest) state.Key { return state.NodeKey(a.Node) },
			func(st *state.Store, a *structs.NodeSpecificRequest, r *structs.IndexedNodeServices) (idx uint64) {
				idx, r.NodeServices = st.NodeServices(a.Node)
				return idx
			}),
		readEndpoint(structs.MethodHealthServiceNodes,
			func(a *structs.ServiceSpecificRequest) state.Key {
				if a.ServiceName == catalogIndexProbe {
					return state.TablesKey(state.TableNodes, state.TableServices, state.TableChecks)
				}
				return state.ServiceKey(a.ServiceName)
			},
			func(st *state.Store, a *structs.ServiceSpecificRequest, r *structs.IndexedCheckServiceNodes) (idx uint64) {
				idx, r.Nodes = st.CheckServiceNodes(a.ServiceName, a.ServiceTag, a.PassingOnly)
				if a.ServiceName == catalogIndexProbe {
					idx = st.CatalogIndex()
				}
				return idx
			}),
		readEndpoint(structs.MethodHealthNodeChecks,
			func(a *structs.NodeSpecificRequest) state.Key { return state.NodeKey(a.Node) },
			func(st *state.Store, a *structs.NodeSpecificRequest, r *structs.IndexedHealthChecks) (idx uint64) {
				idx, r.HealthChecks = st.NodeChecks(a.Node)
				return idx
			}),
		readEndpoint(structs.MethodHealthServiceChecks,
			func(a *structs.ServiceSpecificRequest) state.Key { return state.ServiceKey(a.ServiceName) },
			func(st *state.Store, a *structs.ServiceSpecificRequest, r *structs.IndexedHealthChecks) (idx uint64) {
				idx, r.HealthChecks = st.ServiceChecks(a.ServiceName)
				return idx
			}),
		readEndpoint(structs.MethodHealthChecksInState,
			func(*structs.ChecksInStateRequest) state.Key { return state.TablesKey(state.TableChecks) },
			func(st *state.Store, a *structs.ChecksInStateRequest, r *structs.IndexedHealthChecks) (idx uint64) {
				idx, r.HealthChecks = st.ChecksInState(a.State)
				return idx
			}),
		readEndpoint(structs.MethodKVSGet, kvKey,
			func(st *state.Store, a *structs.KeyRequest, r *structs.IndexedDirEntries) uint64 {
				idx, e := st.KVSGet(a.Key)
				r.Entries = nil
				if e != nil {
					r.Entries = []*structs.DirEntry{e}
				}
				return idx
			}),
		readEndpoint(structs.MethodKVSList, kvKey,
			func(st *state.Store, a *structs.KeyRequest, r *structs.IndexedDirEntries) (idx uint64) {
				idx, r.Entries = st.KVSList(a.Key)
				return idx
			}),
		readEndpoint(structs.MethodKVSListKeys, kvKey,
			func(st *state.Store, a *structs.KeyRequest, r *structs.IndexedKeyList) (idx uint64) {
				idx, r.Keys = st.KVSListKeys(a.Key, a.Separator)
				return idx
			}),
	}
}

// catalogIndexProbe is the service name client agents' index watch asks
// for (cache/catalog.go indexProbe). Its health read reports and blocks on
// the catalog-wide index, every catalog change waking it, as all reads did
// before per-key indexes. Clients subscribe per key now (cluster/stream);
// it stays for caches in RefreshIndexWatch mode, the fallback against
// older servers and the bench's comparison line.
const catalogIndexProbe = "_cairn-catalog-index"

func kvKey(a *structs.KeyRequest) state.Key { return state.KVPrefixKey(a.Key) }

func (s *Server) registerWrites() {
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
		if a.Op == structs.KVLock || a.Op == structs.KVUnlock {
			// Lock ops are session writes (see structs.SessionRequestType).
			op := structs.SessionLock
			if a.Op == structs.KVUnlock {
				op = structs.SessionUnlock
			}
			return s.sessionApply(ctx, &structs.SessionRequest{Datacenter: a.Datacenter, Op: op, DirEnt: a.DirEnt}, r)
		}
		return s.write(ctx, structs.MethodKVSApply, a.Datacenter, structs.KVSRequestType, a, r)
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
}

func (s *Server) registerStatus() {
	handle(s, structs.MethodCatalogListDatacenters, func(ctx context.Context, a *structs.DCSpecificRequest, r *[]string) error {
		*r = s.Datacenters()
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
		if err := s.wait(f); err != nil {
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
		if err := s.wait(f); err != nil {
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
