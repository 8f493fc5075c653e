package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// ACLConfig is the server's part of the agent's acl block.
type ACLConfig struct {
	Enabled bool
	// DefaultAllow is default_policy = "allow".
	DefaultAllow bool
	// InitialManagement, if set, is made a management token by the leader
	// (bootstrapping ACLs if nobody did).
	InitialManagement string
}

// maxRulesCache bounds the parsed-rules cache; policies are few, so it is
// simply emptied when full.
const maxRulesCache = 4096

// rulesCache holds parsed policy rules by policy ID and ModifyIndex, so a
// request does not re-parse HCL.
type rulesCache struct {
	mu sync.Mutex
	m  map[rulesKey]*acl.Rules
}

type rulesKey struct {
	id  string
	mod uint64
}

func (c *rulesCache) get(p *structs.ACLPolicy) *acl.Rules {
	k := rulesKey{p.ID, p.ModifyIndex}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[k]; ok {
		return r
	}
	r, err := acl.Parse(p.Rules)
	if err != nil {
		r = &acl.Rules{} // validated on write; an unparsable policy grants nothing
	}
	if c.m == nil || len(c.m) >= maxRulesCache {
		c.m = map[rulesKey]*acl.Rules{}
	}
	c.m[k] = r
	return r
}

// Authorizer resolves the ACL secret ctx carries (none: the anonymous
// token) against this server's state. With ACLs disabled everything is
// allowed. An unknown secret is ErrACLNotFound.
func (s *Server) Authorizer(ctx context.Context) (*acl.Authorizer, error) {
	if !s.cfg.ACL.Enabled {
		return acl.AllowAll(), nil
	}
	res := s.resolve(s.fsm.State(), acl.TokenFromContext(ctx))
	if !res.Found {
		return nil, structs.ErrACLNotFound
	}
	return s.authorizerOf(s.fsm.State(), res), nil
}

// resolve finds secret's token and its policies' rules.
func (s *Server) resolve(st *state.Store, secret string) *structs.ACLResolution {
	var tok *structs.ACLToken
	if secret == "" || secret == structs.ACLTokenAnonymousSecret {
		tok = st.ACLToken(structs.ACLTokenAnonymousID, "")
		if tok == nil { // not bootstrapped yet: anonymous has no policies
			return &structs.ACLResolution{AccessorID: structs.ACLTokenAnonymousID, Found: true}
		}
	} else if tok = st.ACLToken("", secret); tok == nil {
		return &structs.ACLResolution{}
	}
	res := &structs.ACLResolution{AccessorID: tok.AccessorID, Found: true}
	for _, l := range tok.Policies {
		if l.ID == structs.ACLPolicyGlobalManagementID {
			res.Management = true
			continue
		}
		if p := st.ACLPolicy(l.ID, ""); p != nil {
			res.Rules = append(res.Rules, p.Rules)
		}
	}
	return res
}

func (s *Server) authorizerOf(st *state.Store, res *structs.ACLResolution) *acl.Authorizer {
	if res.Management {
		return acl.Management()
	}
	var rules []*acl.Rules
	tok := st.ACLToken(res.AccessorID, "")
	if tok != nil {
		for _, l := range tok.Policies {
			if p := st.ACLPolicy(l.ID, ""); p != nil {
				rules = append(rules, s.rules.get(p))
			}
		}
	}
	return acl.New(s.cfg.ACL.DefaultAllow, rules...)
}

// denied is Consul's 403 with what was missing (never the secret).
func denied(res acl.Resource, name string, l acl.Level) error {
	if name == "" {
		return fmt.Errorf("%w: token lacks permission '%s:%s'", structs.ErrPermissionDenied, res, l)
	}
	return fmt.Errorf("%w: token lacks permission '%s:%s' on %q", structs.ErrPermissionDenied, res, l, name)
}

func need(a *acl.Authorizer, res acl.Resource, name string, l acl.Level) error {
	if a.Allowed(res, name, l) {
		return nil
	}
	return denied(res, name, l)
}

// authorize is the one gate every RPC passes (see handle): it checks the
// caller may make the call at all. Reads that list things are filtered
// afterwards (filterReply) instead. Methods this table does not know need
// a management token while ACLs are on: a new endpoint is closed until
// someone decides its rule.
//
// A nil Authorizer with a nil error means "no ACL decision here" (ACLs
// off, or a public method): the call goes ahead unfiltered, and the hot
// path allocates nothing.
func (s *Server) authorize(ctx context.Context, method string, args any) (*acl.Authorizer, error) {
	if !s.cfg.ACL.Enabled {
		return nil, nil
	}
	if method == structs.MethodACLBootstrap || method == structs.MethodACLResolve || strings.HasPrefix(method, "Status.") ||
		method == structs.MethodCatalogListDatacenters {
		return nil, nil // decided by the endpoint itself, or public (Consul)
	}
	a, err := s.Authorizer(ctx)
	if err != nil {
		return nil, err
	}
	switch args := args.(type) {
	case *structs.RegisterRequest:
		if !args.SkipNodeUpdate || args.Service == nil {
			if err := need(a, acl.ResNode, args.Node, acl.LevelWrite); err != nil {
				return nil, err
			}
		}
		if args.Service != nil {
			return a, need(a, acl.ResService, args.Service.Service, acl.LevelWrite)
		}
		return a, nil
	case *structs.DeregisterRequest:
		if args.ServiceID != "" {
			if name := s.serviceName(args.Node, args.ServiceID); name != "" && a.Write(acl.ResService, name) {
				return a, nil
			}
		}
		return a, need(a, acl.ResNode, args.Node, acl.LevelWrite)
	case *structs.KVSRequest:
		if args.Op == structs.KVDeleteTree {
			if !a.KeyWritePrefix(args.DirEnt.Key) {
				return nil, denied(acl.ResKey, args.DirEnt.Key, acl.LevelWrite)
			}
			return a, nil
		}
		return a, need(a, acl.ResKey, args.DirEnt.Key, acl.LevelWrite)
	case *structs.KeyRequest:
		if method == structs.MethodKVSGet {
			return a, need(a, acl.ResKey, args.Key, acl.LevelRead)
		}
		return a, nil // lists are filtered
	case *structs.EventFireRequest:
		return a, need(a, acl.ResEvent, args.Event.Name, acl.LevelWrite)
	case *structs.SessionRequest:
		switch args.Op {
		case structs.SessionLock, structs.SessionUnlock:
			return a, need(a, acl.ResKey, args.DirEnt.Key, acl.LevelWrite)
		case structs.SessionCreate:
			return a, need(a, acl.ResSession, args.Session.Node, acl.LevelWrite)
		}
		return a, need(a, acl.ResSession, s.sessionNode(args.Session.ID), acl.LevelWrite)
	case *structs.SessionSpecificRequest:
		if method == structs.MethodSessionRenew {
			return a, need(a, acl.ResSession, s.sessionNode(args.SessionID), acl.LevelWrite)
		}
		return a, nil // filtered
	case *structs.CoordinateUpdateRequest:
		return a, need(a, acl.ResNode, args.Node, acl.LevelWrite)
	case *structs.PreparedQueryRequest:
		// Consul: query write on the query's name (unnamed: only a
		// query_prefix "" rule or a management token).
		name := ""
		if args.Query != nil {
			name = args.Query.Name
		}
		return a, need(a, acl.ResQuery, name, acl.LevelWrite)
	case *structs.TxnRequest:
		return a, txnAllowed(a, args.Ops)
	case *structs.TxnReadRequest:
		return a, txnAllowed(a, args.Ops)
	}
	switch method {
	case structs.MethodSessionList, structs.MethodSessionNode:
		return a, nil // filtered
	case structs.MethodCoordinateListDatacenters:
		return a, nil // public, as Consul's
	case structs.MethodCoordinateListNodes, structs.MethodCoordinateNode,
		structs.MethodPreparedQueryGet, structs.MethodPreparedQueryList,
		structs.MethodPreparedQueryExecute, structs.MethodPreparedQueryExecuteRemote, structs.MethodPreparedQueryExplain:
		return a, nil // filtered: coordinates by node, queries by name, results by service and node
	case structs.MethodCatalogListNodes, structs.MethodCatalogListServices, structs.MethodCatalogServiceNodes,
		structs.MethodCatalogNodeServices, structs.MethodHealthServiceNodes, structs.MethodHealthNodeChecks,
		structs.MethodHealthServiceChecks, structs.MethodHealthChecksInState:
		return a, nil // filtered
	case structs.MethodOperatorRaftConfig, structs.MethodOperatorAutopilotGetConfig, structs.MethodOperatorServerHealth,
		structs.MethodSnapshotSave:
		return a, need(a, acl.ResOperator, "", acl.LevelRead)
	case structs.MethodOperatorRaftRemovePeer, structs.MethodOperatorRaftTransferLeader, structs.MethodSnapshotRestore:
		return a, need(a, acl.ResOperator, "", acl.LevelWrite)
	case structs.MethodACLPolicyRead, structs.MethodACLPolicyList, structs.MethodACLTokenList:
		return a, need(a, acl.ResACL, "", acl.LevelRead)
	case structs.MethodACLTokenRead:
		if ta, ok := args.(*structs.ACLTokenReadRequest); ok && ta.Self {
			return a, nil
		}
		return a, need(a, acl.ResACL, "", acl.LevelRead)
	case structs.MethodACLPolicySet, structs.MethodACLPolicyDelete, structs.MethodACLTokenSet, structs.MethodACLTokenDelete:
		return a, need(a, acl.ResACL, "", acl.LevelWrite)
	}
	if a.IsManagement() {
		return a, nil
	}
	return nil, fmt.Errorf("%w: %s needs a management token (no finer ACL rule decided for it yet)", structs.ErrPermissionDenied, method)
}

// sessionNode is the node of session id ("" if unknown: only a rule
// for every node can allow acting on it).
func (s *Server) sessionNode(id string) string {
	if _, sess := s.fsm.State().SessionGet(id); sess != nil {
		return sess.Node
	}
	return ""
}

// txnAllowed checks each op of a transaction as the KV call it stands
// for; one refused op refuses the whole transaction (nothing applies).
func txnAllowed(a *acl.Authorizer, ops []structs.TxnOp) error {
	for _, op := range ops {
		if op.KV == nil {
			continue
		}
		key := op.KV.DirEnt.Key
		switch op.KV.Verb {
		case structs.KVGet, structs.KVGetTree, structs.KVCheckIndex, structs.KVCheckSession, structs.KVCheckNotExists:
			if err := need(a, acl.ResKey, key, acl.LevelRead); err != nil {
				return err
			}
		case structs.KVDeleteTree:
			if !a.KeyWritePrefix(key) {
				return denied(acl.ResKey, key, acl.LevelWrite)
			}
		default:
			if err := need(a, acl.ResKey, key, acl.LevelWrite); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) serviceName(node, id string) string {
	_, ns := s.fsm.State().NodeServices(node)
	if ns == nil {
		return ""
	}
	if svc := ns.Services[id]; svc != nil {
		return svc.Service
	}
	return ""
}

// filterReply drops from a read's reply what a cannot read, and says so
// in its QueryMeta (X-Consul-Results-Filtered-By-ACLs), as Consul does.
func filterReply(a *acl.Authorizer, reply any) {
	if a == nil || a.IsManagement() {
		return
	}
	canNode := func(n string) bool { return a.Read(acl.ResNode, n) }
	canSvc := func(n string) bool { return a.Read(acl.ResService, n) }
	switch r := reply.(type) {
	case *structs.IndexedNodes:
		r.Nodes, r.ResultsFilteredByACLs = keep(r.Nodes, func(n *structs.Node) bool { return canNode(n.Node) })
	case *structs.IndexedCoordinates:
		r.Coordinates, r.ResultsFilteredByACLs = keep(r.Coordinates, func(c *structs.Coordinate) bool { return canNode(c.Node) })
	case *structs.IndexedPreparedQueries:
		r.Queries, r.ResultsFilteredByACLs = keep(r.Queries, func(q *structs.PreparedQuery) bool { return a.Read(acl.ResQuery, q.Name) })
	case *structs.PreparedQueryExplainResponse:
		if !a.Read(acl.ResQuery, r.Query.Name) {
			r.Query, r.ResultsFilteredByACLs = structs.PreparedQuery{}, true
		}
	case *structs.PreparedQueryExecuteResponse:
		r.Nodes, r.ResultsFilteredByACLs = keep(r.Nodes, func(c structs.CheckServiceNode) bool {
			return c.Service != nil && c.Node != nil && canSvc(c.Service.Service) && canNode(c.Node.Node)
		})
	case *structs.IndexedServices:
		for name := range r.Services {
			if !canSvc(name) {
				delete(r.Services, name)
				r.ResultsFilteredByACLs = true
			}
		}
	case *structs.IndexedServiceNodes:
		r.ServiceNodes, r.ResultsFilteredByACLs = keep(r.ServiceNodes, func(sn *structs.ServiceNode) bool {
			return canSvc(sn.ServiceName) && canNode(sn.Node)
		})
	case *structs.IndexedCheckServiceNodes:
		r.Nodes, r.ResultsFilteredByACLs = keep(r.Nodes, func(c structs.CheckServiceNode) bool {
			return c.Service != nil && c.Node != nil && canSvc(c.Service.Service) && canNode(c.Node.Node)
		})
	case *structs.IndexedNodeServices:
		if r.NodeServices == nil || r.NodeServices.Node == nil {
			return
		}
		if !canNode(r.NodeServices.Node.Node) {
			r.NodeServices, r.ResultsFilteredByACLs = nil, true
			return
		}
		svcs := make(map[string]*structs.NodeService, len(r.NodeServices.Services))
		for id, svc := range r.NodeServices.Services {
			if canSvc(svc.Service) {
				svcs[id] = svc
			} else {
				r.ResultsFilteredByACLs = true
			}
		}
		ns := *r.NodeServices
		ns.Services = svcs
		r.NodeServices = &ns
	case *structs.IndexedHealthChecks:
		r.HealthChecks, r.ResultsFilteredByACLs = keep(r.HealthChecks, func(c *structs.HealthCheck) bool {
			if c.ServiceName != "" {
				return canSvc(c.ServiceName)
			}
			return canNode(c.Node)
		})
	case *structs.IndexedDirEntries:
		r.Entries, r.ResultsFilteredByACLs = keep(r.Entries, func(e *structs.DirEntry) bool { return a.Read(acl.ResKey, e.Key) })
	case *structs.IndexedKeyList:
		r.Keys, r.ResultsFilteredByACLs = keep(r.Keys, func(k string) bool { return a.Read(acl.ResKey, k) })
	case *structs.IndexedSessions:
		r.Sessions, r.ResultsFilteredByACLs = keep(r.Sessions, func(s *structs.Session) bool { return a.Read(acl.ResSession, s.Node) })
	}
}

// keep returns the elements of in that ok accepts (a new slice: replies
// may share the Store's) and whether any was dropped.
func keep[T any](in []T, ok func(T) bool) ([]T, bool) {
	out := make([]T, 0, len(in))
	for _, v := range in {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out, len(out) != len(in)
}

// initializeACLs makes the configured initial_management secret a
// management token, bootstrapping ACLs if that was not done (as Consul's
// leader does; a later /v1/acl/bootstrap is then refused). Run by the
// leader after its barrier; failures are logged and retried next term.
func (s *Server) initializeACLs() {
	secret := s.cfg.ACL.InitialManagement
	if !s.cfg.ACL.Enabled || secret == "" {
		return
	}
	st := s.fsm.State()
	if st.ACLToken("", secret) != nil {
		return
	}
	accessor, err := structs.GenerateUUID()
	if err != nil {
		s.log.Warn("acl: cannot create the initial management token", zap.Error(err))
		return
	}
	tok := structs.ACLToken{AccessorID: accessor, SecretID: secret, Description: "Initial Management Token",
		CreateTime: time.Now().UTC(), Policies: []structs.ACLPolicyLink{{ID: structs.ACLPolicyGlobalManagementID}}}
	if st.ACLBootstrapIndex() == 0 {
		_, _, err = s.apply(structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: tok})
	} else {
		_, _, err = s.apply(structs.ACLTokenSetRequestType, &structs.ACLTokenSetRequest{Token: tok, Create: true})
	}
	if err != nil {
		s.log.Warn("acl: cannot create the initial management token", zap.Error(err))
		return
	}
	s.log.Info("acl: created the initial management token", zap.String("accessor_id", accessor))
}
