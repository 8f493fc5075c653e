package http

import (
	"context"
	"errors"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

// Authorizer is what a Backend implements when it enforces ACLs on the
// agent's own endpoints (servers enforce everything reached by RPC). A
// Backend without it allows everything agent-local.
type Authorizer interface {
	// Authorizer resolves the secret carried by ctx (acl.TokenFromContext).
	Authorizer(ctx context.Context) (*acl.Authorizer, error)
}

// requestToken is the caller's ACL secret: X-Consul-Token, then
// Authorization: Bearer, then ?token= (Consul's order).
func requestToken(r *nethttp.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("token")
}

// authzKey holds a request's lazily resolved Authorizer in its context.
type authzKey struct{}

type authzOnce struct {
	once  sync.Once
	authz *acl.Authorizer
	err   error
}

// withToken puts the request's token in its context (the RPC client sends
// it to the server, which decides) and a slot for its Authorizer.
func withToken(r *nethttp.Request) *nethttp.Request {
	ctx := r.Context()
	if t := requestToken(r); t != "" {
		ctx = acl.ContextWithToken(ctx, t)
	}
	return r.WithContext(context.WithValue(ctx, authzKey{}, &authzOnce{}))
}

// authorizer resolves the request's token once per request.
func (a *handler) authorizer(r *nethttp.Request) (*acl.Authorizer, error) {
	ab, ok := a.b.(Authorizer)
	if !ok {
		return acl.AllowAll(), nil
	}
	slot, _ := r.Context().Value(authzKey{}).(*authzOnce)
	if slot == nil {
		return ab.Authorizer(r.Context())
	}
	slot.once.Do(func() { slot.authz, slot.err = ab.Authorizer(r.Context()) })
	return slot.authz, slot.err
}

// allow is the check call of agent-local handlers.
func (a *handler) allow(r *nethttp.Request, res acl.Resource, name string, l acl.Level) error {
	authz, err := a.authorizer(r)
	if err != nil {
		return err
	}
	if !authz.Allowed(res, name, l) {
		return structs.ErrPermissionDenied
	}
	return nil
}

// routeACL checks the agent-local routes before their handler runs.
// Routes that reach the servers by RPC are decided there (with the token
// the request carries) and are not listed here.
func (a *handler) routeACL(r *nethttp.Request, path, arg string) error {
	if _, ok := a.b.(Authorizer); !ok || !strings.HasPrefix(path, "/v1/agent/") && path != "/v1/operator/keyring" {
		return nil
	}
	node := a.b.NodeName()
	switch path {
	case "/v1/agent/self", "/v1/agent/members", "/v1/agent/metrics", "/v1/agent/monitor":
		return a.allow(r, acl.ResAgent, node, acl.LevelRead)
	case "/v1/agent/services", "/v1/agent/checks":
		return nil // filtered by the handler (readableServices, readableChecks)
	case "/v1/agent/join/", "/v1/agent/leave", "/v1/agent/reload":
		return a.allow(r, acl.ResAgent, node, acl.LevelWrite)
	case "/v1/agent/force-leave/":
		return a.allow(r, acl.ResOperator, "", acl.LevelWrite)
	case "/v1/agent/maintenance", "/v1/agent/check/register":
		return a.allow(r, acl.ResNode, node, acl.LevelWrite)
	case "/v1/agent/service/deregister/", "/v1/agent/service/maintenance/":
		if svc := a.b.LocalServices()[arg]; svc != nil {
			return a.allow(r, acl.ResService, svc.Service, acl.LevelWrite)
		}
		return a.allow(r, acl.ResNode, node, acl.LevelWrite)
	case "/v1/agent/check/deregister/", "/v1/agent/check/pass/", "/v1/agent/check/warn/",
		"/v1/agent/check/fail/", "/v1/agent/check/update/":
		if c := a.b.LocalChecks()[arg]; c != nil && c.ServiceName != "" {
			return a.allow(r, acl.ResService, c.ServiceName, acl.LevelWrite)
		}
		return a.allow(r, acl.ResNode, node, acl.LevelWrite)
	case "/v1/operator/keyring":
		if r.Method == nethttp.MethodGet {
			return a.allow(r, acl.ResKeyring, "", acl.LevelRead)
		}
		return a.allow(r, acl.ResKeyring, "", acl.LevelWrite)
	case "/v1/agent/service/register":
		return nil // service write on the body's name, checked by the handler
	}
	// Agent routes without a rule of their own: agent read to look,
	// agent write to change.
	if r.Method == nethttp.MethodGet {
		return a.allow(r, acl.ResAgent, node, acl.LevelRead)
	}
	return a.allow(r, acl.ResAgent, node, acl.LevelWrite)
}

// readableServices keeps the local services the request may read
// (service read), as Consul's /v1/agent/services.
func (a *handler) readableServices(w nethttp.ResponseWriter, r *nethttp.Request, m map[string]*structs.NodeService) (map[string]*structs.NodeService, error) {
	authz, err := a.authorizer(r)
	if err != nil || authz.IsManagement() {
		return m, err
	}
	out := make(map[string]*structs.NodeService, len(m))
	for id, s := range m {
		if authz.Read(acl.ResService, s.Service) {
			out[id] = s
		}
	}
	if len(out) != len(m) {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	return out, nil
}

// readableChecks keeps the local checks the request may read: service
// read for a service's check, node read for a node check.
func (a *handler) readableChecks(w nethttp.ResponseWriter, r *nethttp.Request, m map[string]*structs.HealthCheck) (map[string]*structs.HealthCheck, error) {
	authz, err := a.authorizer(r)
	if err != nil || authz.IsManagement() {
		return m, err
	}
	out := make(map[string]*structs.HealthCheck, len(m))
	for id, c := range m {
		if c.ServiceName != "" && authz.Read(acl.ResService, c.ServiceName) || c.ServiceName == "" && authz.Read(acl.ResNode, c.Node) {
			out[id] = c
		}
	}
	if len(out) != len(m) {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	return out, nil
}

// filterEvents keeps the user events the request may read.
func (a *handler) filterEvents(r *nethttp.Request, events []structs.UserEvent) ([]structs.UserEvent, error) {
	authz, err := a.authorizer(r)
	if err != nil || authz.IsManagement() {
		return events, err
	}
	out := make([]structs.UserEvent, 0, len(events))
	for _, e := range events {
		if authz.Read(acl.ResEvent, e.Name) {
			out = append(out, e)
		}
	}
	return out, nil
}

// aclStatus maps ACL errors to Consul's statuses (0: not an ACL error).
func aclStatus(err error) int {
	switch {
	case errors.Is(err, structs.ErrPermissionDenied), errors.Is(err, structs.ErrACLNotFound),
		errors.Is(err, structs.ErrACLBootstrapDone):
		return nethttp.StatusForbidden
	case errors.Is(err, structs.ErrACLDisabled):
		return nethttp.StatusUnauthorized
	}
	return 0
}

// The /v1/acl endpoints.

func (a *handler) aclBootstrap(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var tok structs.ACLToken
	if err := a.b.RPC(r.Context(), structs.MethodACLBootstrap, &structs.ACLBootstrapRequest{Datacenter: a.datacenter(r.URL.Query())}, &tok); err != nil {
		return err
	}
	return writeJSON(w, r, &tok)
}

// policyBody is a policy as clients send it (the official client sends
// every field of its ACLPolicy).
type policyBody struct {
	ID          string
	Name        string
	Description string
	Rules       string
	Datacenters []string
	Hash        []byte
	CreateIndex uint64
	ModifyIndex uint64
	Namespace   string
	Partition   string
}

func (a *handler) aclPolicyCreate(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	return a.aclPolicyWrite(w, r, "")
}

func (a *handler) aclPolicyWrite(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	var body policyBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if id != "" && body.ID != "" && body.ID != id {
		return badRequest("Policy ID in URL and payload do not match")
	}
	if id == "" && body.ID != "" {
		return badRequest("Cannot specify the ID when creating a new policy")
	}
	if err := validText("policy name", body.Name); err != nil {
		return err
	}
	req := &structs.ACLPolicySetRequest{Datacenter: a.datacenter(r.URL.Query()), Policy: structs.ACLPolicy{
		ID: id, Name: body.Name, Description: body.Description, Rules: body.Rules, Datacenters: body.Datacenters}}
	var out structs.ACLPolicy
	if err := a.b.RPC(r.Context(), structs.MethodACLPolicySet, req, &out); err != nil {
		return err
	}
	return writeJSON(w, r, &out)
}

func (a *handler) aclPolicy(w nethttp.ResponseWriter, r *nethttp.Request, arg string) error {
	if err := validName("policy ID", arg); err != nil {
		return err
	}
	dc := a.datacenter(r.URL.Query())
	switch r.Method {
	case nethttp.MethodPut:
		return a.aclPolicyWrite(w, r, arg)
	case nethttp.MethodDelete:
		var out structs.WriteResponse
		if err := a.b.RPC(r.Context(), structs.MethodACLPolicyDelete, &structs.ACLPolicyDeleteRequest{Datacenter: dc, ID: arg}, &out); err != nil {
			return err
		}
		return writeJSON(w, r, true)
	}
	req := &structs.ACLPolicyReadRequest{Datacenter: dc, ID: arg}
	if name, ok := strings.CutPrefix(arg, "name/"); ok {
		req.ID, req.Name = "", name
	}
	var out structs.ACLPolicy
	if err := a.b.RPC(r.Context(), structs.MethodACLPolicyRead, req, &out); err != nil {
		return err
	}
	if out.ID == "" {
		return &httpError{code: nethttp.StatusNotFound, msg: "ACL policy not found"}
	}
	return writeJSON(w, r, &out)
}

func (a *handler) aclPolicies(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var out structs.IndexedACLPolicies
	if err := a.b.RPC(r.Context(), structs.MethodACLPolicyList, &structs.DCSpecificRequest{Datacenter: a.datacenter(r.URL.Query())}, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	if out.Policies == nil {
		out.Policies = []*structs.ACLPolicy{}
	}
	return writeJSON(w, r, out.Policies)
}

// tokenBody is a token as clients send it; the identity kinds cairn does
// not implement must be empty.
type tokenBody struct {
	AccessorID          string
	SecretID            string
	Description         string
	Policies            []structs.ACLPolicyLink
	Roles               []any
	ServiceIdentities   []any
	NodeIdentities      []any
	TemplatedPolicies   []any
	Local               bool
	AuthMethod          string
	ExpirationTTL       time.Duration
	ExpirationTime      *time.Time
	CreateTime          time.Time
	Hash                []byte
	CreateIndex         uint64
	ModifyIndex         uint64
	Rules               string
	Namespace           string
	Partition           string
	AuthMethodNamespace string
}

func (a *handler) aclTokenCreate(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	return a.aclTokenWrite(w, r, "")
}

func (a *handler) aclTokenWrite(w nethttp.ResponseWriter, r *nethttp.Request, accessor string) error {
	var body tokenBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	switch {
	case len(body.Roles)+len(body.ServiceIdentities)+len(body.NodeIdentities)+len(body.TemplatedPolicies) > 0:
		return badRequest("Invalid token: Roles, ServiceIdentities, NodeIdentities and TemplatedPolicies are not supported")
	case body.ExpirationTTL != 0 || body.ExpirationTime != nil || body.AuthMethod != "" || body.Rules != "":
		return badRequest("Invalid token: ExpirationTTL, ExpirationTime, AuthMethod and legacy Rules are not supported")
	case accessor != "" && body.AccessorID != "" && body.AccessorID != accessor:
		return badRequest("Token Accessor ID in URL and payload do not match")
	}
	for _, l := range body.Policies {
		if l.ID == "" && l.Name == "" {
			return badRequest("Invalid token: a policy link needs an ID or a Name")
		}
	}
	create := accessor == ""
	if !create {
		body.AccessorID = accessor
	}
	req := &structs.ACLTokenSetRequest{Datacenter: a.datacenter(r.URL.Query()), Create: create, Token: structs.ACLToken{
		AccessorID: body.AccessorID, SecretID: body.SecretID, Description: body.Description,
		Policies: body.Policies, Local: body.Local}}
	var out structs.ACLToken
	if err := a.b.RPC(r.Context(), structs.MethodACLTokenSet, req, &out); err != nil {
		return err
	}
	return writeJSON(w, r, &out)
}

func (a *handler) aclToken(w nethttp.ResponseWriter, r *nethttp.Request, arg string) error {
	if err := validName("token accessor ID", arg); err != nil {
		return err
	}
	dc := a.datacenter(r.URL.Query())
	switch r.Method {
	case nethttp.MethodPut:
		return a.aclTokenWrite(w, r, arg)
	case nethttp.MethodDelete:
		var out structs.WriteResponse
		if err := a.b.RPC(r.Context(), structs.MethodACLTokenDelete, &structs.ACLTokenDeleteRequest{Datacenter: dc, AccessorID: arg}, &out); err != nil {
			return err
		}
		return writeJSON(w, r, true)
	}
	req := &structs.ACLTokenReadRequest{Datacenter: dc, AccessorID: arg, Self: arg == "self"}
	var out structs.ACLToken
	if err := a.b.RPC(r.Context(), structs.MethodACLTokenRead, req, &out); err != nil {
		return err
	}
	if out.AccessorID == "" {
		return &httpError{code: nethttp.StatusNotFound, msg: "ACL token not found"}
	}
	return writeJSON(w, r, &out)
}

func (a *handler) aclTokens(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var out structs.IndexedACLTokens
	if err := a.b.RPC(r.Context(), structs.MethodACLTokenList, &structs.DCSpecificRequest{Datacenter: a.datacenter(r.URL.Query())}, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	if out.Tokens == nil {
		out.Tokens = []*structs.ACLToken{}
	}
	return writeJSON(w, r, out.Tokens)
}
