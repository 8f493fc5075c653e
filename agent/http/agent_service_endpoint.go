package http

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	nethttp "net/http"
	"slices"
	"strings"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// LocalWatcher is implemented by backends whose local services and checks
// can be watched. Hash-blocking reads of /v1/agent/service/<id> wait on
// it; without it they answer at once.
type LocalWatcher interface {
	// LocalChanged returns a channel closed at the next change of any
	// local service or check.
	LocalChanged() <-chan struct{}
}

// defaultHashWait is how long a ?hash= read blocks when ?wait is absent
// (Consul's default blocking time, 5 minutes).
const defaultHashWait = 5 * time.Minute

// agentServiceFull is /v1/agent/service/<id>: the AgentService with the
// hash of its definition.
type agentServiceFull struct {
	agentService
	ContentHash string
}

func (a *handler) localAgentService(id string) *agentServiceFull {
	s := a.b.LocalServices()[id]
	if s == nil {
		return nil
	}
	as := &agentServiceFull{agentService: agentService{
		ID: s.ID, Service: s.Service, Tags: nonNil(s.Tags), Meta: s.Meta, Port: s.Port,
		Address: s.Address, Weights: structs.Weights{Passing: 1, Warning: 1},
		EnableTagOverride: s.EnableTagOverride, Datacenter: a.b.Datacenter(),
	}}
	if s.Weights != nil {
		as.Weights = *s.Weights
	}
	if as.Meta == nil {
		as.Meta = map[string]string{}
	}
	as.ContentHash = contentHash(&as.agentService)
	return as
}

// contentHash is 16 hex digits of FNV-64a over the definition's JSON
// (maps encode with sorted keys, so equal definitions hash equal).
func contentHash(s *agentService) string {
	b, _ := json.Marshal(s)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

// agentServiceGet serves /v1/agent/service/<id>, blocking while ?hash=
// equals the current ContentHash (up to ?wait), as Consul does.
func (a *handler) agentServiceGet(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("service ID", id); err != nil {
		return err
	}
	q := r.URL.Query()
	wait := defaultHashWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return badRequest("Invalid wait time %q", v)
		}
		wait = min(d, MaxQueryTime)
	}
	hash := q.Get("hash")
	var timeout <-chan time.Time
	if hash != "" {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	lw, _ := a.b.(LocalWatcher)
	for {
		var changed <-chan struct{}
		if lw != nil {
			changed = lw.LocalChanged() // before reading: no change is missed
		}
		svc := a.localAgentService(id)
		if svc == nil {
			return &httpError{code: nethttp.StatusNotFound, msg: fmt.Sprintf("unknown service ID: %s", id)}
		}
		if hash == "" || svc.ContentHash != hash || changed == nil {
			w.Header().Set("X-Consul-ContentHash", svc.ContentHash)
			return writeJSON(w, r, svc)
		}
		select {
		case <-changed:
		case <-timeout:
			hash = "" // answer with the current definition
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
}

// agentServiceChecksInfo is Consul's AgentServiceChecksInfo.
type agentServiceChecksInfo struct {
	AggregatedStatus string
	Service          *agentServiceFull
	Checks           []*structs.HealthCheck
}

// maintenance check IDs, as Consul names them.
const (
	nodeMaintCheckID   = "_node_maintenance"
	serviceMaintPrefix = "_service_maintenance:"
)

// localServiceHealth is the service with its own checks (sorted by ID)
// and their aggregate: maintenance > critical > warning > passing.
func (a *handler) localServiceHealth(svc *agentServiceFull, checks map[string]*structs.HealthCheck) agentServiceChecksInfo {
	info := agentServiceChecksInfo{AggregatedStatus: structs.HealthPassing, Service: svc, Checks: []*structs.HealthCheck{}}
	for _, c := range checks {
		if c.ServiceID != svc.ID {
			continue
		}
		cc := *c
		cc.ServiceTags = nonNil(cc.ServiceTags)
		info.Checks = append(info.Checks, &cc)
	}
	slices.SortFunc(info.Checks, func(x, y *structs.HealthCheck) int { return strings.Compare(x.CheckID, y.CheckID) })
	info.AggregatedStatus = aggregateWithMaint(info.Checks)
	return info
}

func aggregateWithMaint(checks []*structs.HealthCheck) string {
	for _, c := range checks {
		if c.CheckID == nodeMaintCheckID || strings.HasPrefix(c.CheckID, serviceMaintPrefix) || c.Status == structs.HealthMaint {
			return structs.HealthMaint
		}
	}
	return structs.AggregateStatus(checks)
}

// healthCode is Consul's status code for an aggregated status: 200
// passing, 429 warning, 503 critical or maintenance.
func healthCode(status string) int {
	switch status {
	case structs.HealthPassing:
		return nethttp.StatusOK
	case structs.HealthWarning:
		return nethttp.StatusTooManyRequests
	}
	return nethttp.StatusServiceUnavailable
}

// worseStatus orders statuses for the by-name aggregate.
func worseStatus(a, b string) string {
	rank := map[string]int{structs.HealthPassing: 0, structs.HealthWarning: 1, structs.HealthCritical: 2, structs.HealthMaint: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// writeHealth answers with code and, for ?format=text, the status as
// plain text, else body as JSON.
func writeHealth(w nethttp.ResponseWriter, r *nethttp.Request, code int, status string, body any) error {
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, status)
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func (a *handler) agentHealthServiceByID(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("service ID", id); err != nil {
		return err
	}
	svc := a.localAgentService(id)
	if svc == nil {
		return &httpError{code: nethttp.StatusNotFound, msg: fmt.Sprintf("ServiceId %s not found", id)}
	}
	info := a.localServiceHealth(svc, a.b.LocalChecks())
	return writeHealth(w, r, healthCode(info.AggregatedStatus), info.AggregatedStatus, info)
}

func (a *handler) agentHealthServiceByName(w nethttp.ResponseWriter, r *nethttp.Request, name string) error {
	if err := validName("service name", name); err != nil {
		return err
	}
	var ids []string
	for id, s := range a.b.LocalServices() {
		if s.Service == name {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return &httpError{code: nethttp.StatusNotFound, msg: fmt.Sprintf("ServiceName %s Not Found", name)}
	}
	slices.Sort(ids)
	checks := a.b.LocalChecks()
	status := structs.HealthPassing
	out := make([]agentServiceChecksInfo, 0, len(ids))
	for _, id := range ids {
		svc := a.localAgentService(id)
		if svc == nil { // removed meanwhile
			continue
		}
		info := a.localServiceHealth(svc, checks)
		status = worseStatus(status, info.AggregatedStatus)
		out = append(out, info)
	}
	return writeHealth(w, r, healthCode(status), status, out)
}

// agentVersion is /v1/agent/version, Consul's shape.
func (a *handler) agentVersion(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	version := ""
	if cfg, ok := a.b.Self()["Config"].(map[string]any); ok {
		version, _ = cfg["Version"].(string)
	}
	return writeJSON(w, r, map[string]string{
		"SHA": "", "BuildDate": "", "HumanVersion": version, "FIPS": "",
	})
}

// nodeServiceList is /v1/catalog/node-services/<node>: the node with its
// services as a list.
type nodeServiceList struct {
	Node     *structs.Node
	Services []*structs.NodeService
}

func (a *handler) catalogNodeServiceList(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	args := structs.NodeSpecificRequest{Node: node}
	if err := validName("node name", node); err != nil {
		return err
	}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedNodeServices
	if err := a.b.RPC(r.Context(), structs.MethodCatalogNodeServices, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	list := nodeServiceList{Services: []*structs.NodeService{}}
	if ns := out.NodeServices; ns != nil {
		list.Node = ns.Node
		for _, s := range ns.Services {
			if s.Tags == nil { // a copy: on a server agent s is the state store's
				c := *s
				c.Tags = []string{}
				s = &c
			}
			list.Services = append(list.Services, s)
		}
		slices.SortFunc(list.Services, func(x, y *structs.NodeService) int { return strings.Compare(x.ID, y.ID) })
	}
	return writeJSON(w, r, list)
}

// ACLPolicyBackend is implemented by backends that know the ACL default
// policy; without it X-Consul-Default-Acl-Policy reads "allow" (Consul's
// default).
type ACLPolicyBackend interface {
	ACLDefaultPolicy() string // "allow" or "deny"
}

// TranslateBackend is implemented by backends that know whether
// translate_wan_addrs is on.
type TranslateBackend interface {
	TranslateWANAddrs() bool
}

// setAgentHeaders writes X-Consul-Default-Acl-Policy and, when address
// translation is on, X-Consul-Translate-Addresses, as Consul's agent does
// on every response.
func (a *handler) setAgentHeaders(w nethttp.ResponseWriter) {
	policy := "allow"
	if pb, ok := a.b.(ACLPolicyBackend); ok && pb.ACLDefaultPolicy() != "" {
		policy = pb.ACLDefaultPolicy()
	}
	w.Header().Set("X-Consul-Default-Acl-Policy", policy)
	if tb, ok := a.b.(TranslateBackend); ok && tb.TranslateWANAddrs() {
		w.Header().Set("X-Consul-Translate-Addresses", "true")
	}
}

// translateWAN reports whether answers for dc use WAN addresses: the
// backend has translate_wan_addrs on and dc is another datacenter.
func (a *handler) translateWAN(dc string) bool {
	tb, ok := a.b.(TranslateBackend)
	return ok && tb.TranslateWANAddrs() && dc != "" && dc != a.b.Datacenter()
}

// wanNode returns n with Address set to its "wan" tagged address (a copy;
// n itself may be the state store's).
func wanNode(n *structs.Node) *structs.Node {
	if n == nil || n.TaggedAddresses["wan"] == "" {
		return n
	}
	c := *n
	c.Address = n.TaggedAddresses["wan"]
	return &c
}
