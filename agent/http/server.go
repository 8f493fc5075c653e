package http

import (
	"errors"
	"fmt"
	nethttp "net/http"
	"runtime/debug"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// endpoint handles one route. arg is the path after a prefix route's
// prefix ("" for exact routes). A returned error is written by errorStatus.
type endpoint func(w nethttp.ResponseWriter, r *nethttp.Request, arg string) error

type route struct {
	path    string // exact path, or prefix when it ends in "/"
	methods []string
	fn      endpoint
}

// handler is the http.Handler New returns.
type handler struct {
	b      Backend
	logger *zap.Logger
	exact  map[string]*route
	prefix []*route // longest first
}

// New returns the HTTP API handler serving the Consul-compatible paths
// from b. The caller listens and serves it.
func New(b Backend, logger *zap.Logger) nethttp.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	a := &handler{b: b, logger: logger.Named("http"), exact: map[string]*route{}}
	get, put := []string{nethttp.MethodGet}, []string{nethttp.MethodPut}
	for _, rt := range []route{
		{"/v1/agent/self", get, a.agentSelf},
		{"/v1/agent/members", get, a.agentMembers},
		{"/v1/agent/services", get, a.agentServices},
		{"/v1/agent/checks", get, a.agentChecks},
		{"/v1/agent/join/", put, a.agentJoin},
		{"/v1/agent/leave", put, a.agentLeave},
		{"/v1/agent/force-leave/", put, a.agentForceLeave},
		{"/v1/agent/reload", put, a.agentReload},
		{"/v1/agent/monitor", get, a.agentMonitor},
		{"/v1/agent/metrics", get, a.agentMetrics},
		{"/v1/agent/maintenance", put, a.agentNodeMaintenance},
		{"/v1/agent/service/register", put, a.agentServiceRegister},
		{"/v1/agent/service/", get, a.agentServiceGet},
		{"/v1/agent/health/service/id/", get, a.agentHealthServiceByID},
		{"/v1/agent/health/service/name/", get, a.agentHealthServiceByName},
		{"/v1/agent/version", get, a.agentVersion},
		{"/v1/catalog/node-services/", get, a.catalogNodeServiceList},
		{"/v1/coordinate/datacenters", get, a.coordinateDatacenters},
		{"/v1/coordinate/nodes", get, a.coordinateNodes},
		{"/v1/coordinate/node/", get, a.coordinateNode},
		{"/v1/coordinate/update", put, a.coordinateUpdate},
		{"/v1/query", []string{nethttp.MethodGet, nethttp.MethodPost}, a.queryRoot},
		{"/v1/query/", []string{nethttp.MethodGet, nethttp.MethodPut, nethttp.MethodDelete}, a.querySpecific},
		{"/v1/agent/service/deregister/", put, a.agentServiceDeregister},
		{"/v1/agent/service/maintenance/", put, a.agentServiceMaintenance},
		{"/v1/agent/check/register", put, a.agentCheckRegister},
		{"/v1/agent/check/deregister/", put, a.agentCheckDeregister},
		{"/v1/agent/check/pass/", put, a.agentCheckTTL("pass")},
		{"/v1/agent/check/warn/", put, a.agentCheckTTL("warn")},
		{"/v1/agent/check/fail/", put, a.agentCheckTTL("fail")},
		{"/v1/agent/check/update/", put, a.agentCheckUpdate},
		{"/v1/catalog/register", put, a.catalogRegister},
		{"/v1/catalog/deregister", put, a.catalogDeregister},
		{"/v1/catalog/datacenters", get, a.catalogDatacenters},
		{"/v1/catalog/nodes", get, a.catalogNodes},
		{"/v1/catalog/services", get, a.catalogServices},
		{"/v1/catalog/service/", get, a.catalogServiceNodes},
		{"/v1/catalog/node/", get, a.catalogNodeServices},
		{"/v1/health/node/", get, a.healthNodeChecks},
		{"/v1/health/checks/", get, a.healthServiceChecks},
		{"/v1/health/service/", get, a.healthServiceNodes},
		{"/v1/health/state/", get, a.healthChecksInState},
		{"/v1/kv/", []string{nethttp.MethodGet, nethttp.MethodPut, nethttp.MethodDelete}, a.kv},
		{"/v1/txn", put, a.txn},
		{"/v1/session/create", put, a.sessionCreate},
		{"/v1/session/destroy/", put, a.sessionDestroy},
		{"/v1/session/renew/", put, a.sessionRenew},
		{"/v1/session/info/", get, a.sessionInfo},
		{"/v1/session/node/", get, a.sessionNode},
		{"/v1/session/list", get, a.sessionList},
		{"/v1/event/fire/", put, a.eventFire},
		{"/v1/event/list", get, a.eventList},
		{"/v1/status/leader", get, a.statusLeader},
		{"/v1/status/peers", get, a.statusPeers},
		{"/v1/operator/raft/configuration", get, a.operatorRaftConfiguration},
		{"/v1/operator/keyring", []string{nethttp.MethodGet, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodDelete}, a.operatorKeyring},
		{"/v1/snapshot", []string{nethttp.MethodGet, nethttp.MethodPut}, a.snapshot},
		{"/v1/operator/raft/peer", []string{nethttp.MethodDelete}, a.operatorRaftPeer},
		{"/v1/operator/raft/transfer-leader", []string{nethttp.MethodPost, nethttp.MethodPut}, a.operatorRaftTransferLeader},
		{"/v1/operator/autopilot/configuration", get, a.operatorAutopilotConfiguration},
		{"/v1/operator/autopilot/health", get, a.operatorAutopilotHealth},
		{"/v1/acl/bootstrap", put, a.aclBootstrap},
		{"/v1/acl/policy", put, a.aclPolicyCreate},
		{"/v1/acl/policy/", []string{nethttp.MethodGet, nethttp.MethodPut, nethttp.MethodDelete}, a.aclPolicy},
		{"/v1/acl/policies", get, a.aclPolicies},
		{"/v1/acl/token", put, a.aclTokenCreate},
		{"/v1/acl/token/", []string{nethttp.MethodGet, nethttp.MethodPut, nethttp.MethodDelete}, a.aclToken},
		{"/v1/acl/tokens", get, a.aclTokens},
	} {
		if strings.HasSuffix(rt.path, "/") {
			a.prefix = append(a.prefix, &rt)
		} else {
			a.exact[rt.path] = &rt
		}
	}
	slices.SortFunc(a.prefix, func(x, y *route) int { return len(y.path) - len(x.path) })
	return a
}

// ServeHTTP routes on the raw (uncleaned) path so KV keys keep their
// slashes, and applies the cross-cutting rules: meta headers on every
// response, method checks, panic recovery.
func (a *handler) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	rw := &responseWriter{ResponseWriter: w}
	// Defaults first, so errors and 404s carry them too; handlers with
	// a query result overwrite them.
	setMeta(rw, 0, false, 0)
	a.setAgentHeaders(rw)
	defer a.recoverPanic(rw, r)

	rt, arg := a.lookup(r.URL.Path)
	if rt == nil {
		writeText(rw, nethttp.StatusNotFound, fmt.Sprintf("Unknown API path %q", r.URL.Path))
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		rw.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeText(rw, nethttp.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed", r.Method))
		return
	}
	r = withToken(r)
	if err := a.routeACL(r, rt.path, arg); err != nil {
		a.writeError(rw, r, err)
		return
	}
	if err := rt.fn(rw, r, arg); err != nil {
		a.writeError(rw, r, err)
	}
}

func (a *handler) lookup(path string) (*route, string) {
	if rt, ok := a.exact[path]; ok {
		return rt, ""
	}
	for _, rt := range a.prefix {
		if rest, ok := strings.CutPrefix(path, rt.path); ok {
			return rt, rest
		}
	}
	return nil, ""
}

func (a *handler) recoverPanic(w *responseWriter, r *nethttp.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == nethttp.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		panic(v)
	}
	a.logger.Error("handler panic",
		zap.String("method", r.Method), zap.String("path", r.URL.Path),
		zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
	if !w.wroteHeader {
		writeText(w, nethttp.StatusInternalServerError, "Internal server error")
	}
}

func (a *handler) writeError(w *responseWriter, r *nethttp.Request, err error) {
	code := errorStatus(err)
	if code >= 500 {
		a.logger.Warn("request failed", zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Error(err))
	}
	if w.wroteHeader {
		return // streaming response already started; nothing more to say
	}
	writeText(w, code, oneLine(err.Error()))
}

// httpError is a client error found while parsing: status plus reason.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: nethttp.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errorStatus(err error) int {
	var he *httpError
	if code := aclStatus(err); code != 0 {
		return code
	}
	switch {
	case errors.Is(err, structs.ErrWriteOutcomeUnknown):
		// Never a 4xx or a CAS "false": the write may have been applied.
		return nethttp.StatusInternalServerError
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, ErrNotFound), errors.Is(err, structs.ErrQueryNotFound):
		return nethttp.StatusNotFound
	case errors.Is(err, ErrBadRequest), errors.Is(err, structs.ErrInvalidRequest):
		return nethttp.StatusBadRequest
	case errors.Is(err, config.ErrScriptChecksDisabled):
		return nethttp.StatusForbidden
	case errors.Is(err, structs.ErrRateLimited):
		return nethttp.StatusTooManyRequests
	}
	return nethttp.StatusInternalServerError
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// responseWriter remembers whether the header went out, so the panic
// handler and error writer never write a second status.
type responseWriter struct {
	nethttp.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

// Flush supports streaming (/v1/agent/monitor).
func (w *responseWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(nethttp.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() nethttp.ResponseWriter { return w.ResponseWriter }
