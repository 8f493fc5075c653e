package http

import (
	nethttp "net/http"
	"strings"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

func (a *handler) agentSelf(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	return writeJSON(w, r, a.b.Self())
}

func (a *handler) agentMembers(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	wan, err := boolParam(r.URL.Query(), "wan", false)
	if err != nil {
		return err
	}
	members := nonNil(a.b.Members(wan))
	for i := range members {
		if members[i].Tags == nil {
			members[i].Tags = map[string]string{}
		}
	}
	return writeJSON(w, r, members)
}

// agentService is Consul's AgentService JSON (/v1/agent/services).
type agentService struct {
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	Weights           structs.Weights
	EnableTagOverride bool
	Datacenter        string
}

func (a *handler) agentServices(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	flt, err := parseFilter(r)
	if err != nil {
		return err
	}
	local, err := a.readableServices(w, r, a.b.LocalServices())
	if err != nil {
		return err
	}
	out := make(map[string]agentService, len(local))
	dc := a.b.Datacenter()
	for id, s := range local {
		as := agentService{
			ID: s.ID, Service: s.Service, Tags: nonNil(s.Tags), Meta: s.Meta, Port: s.Port,
			Address: s.Address, Weights: structs.Weights{Passing: 1, Warning: 1},
			EnableTagOverride: s.EnableTagOverride, Datacenter: dc,
		}
		if s.Weights != nil {
			as.Weights = *s.Weights
		}
		if as.Meta == nil {
			as.Meta = map[string]string{}
		}
		out[id] = as
	}
	if out, err = filterMap(flt, out); err != nil {
		return err
	}
	return writeJSON(w, r, out)
}

func (a *handler) agentChecks(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	flt, err := parseFilter(r)
	if err != nil {
		return err
	}
	local, err := a.readableChecks(w, r, a.b.LocalChecks())
	if err != nil {
		return err
	}
	out := make(map[string]*structs.HealthCheck, len(local))
	for id, c := range local {
		cc := *c
		cc.ServiceTags = nonNil(cc.ServiceTags)
		out[id] = &cc
	}
	if out, err = filterMap(flt, out); err != nil {
		return err
	}
	return writeJSON(w, r, out)
}

func (a *handler) agentJoin(w nethttp.ResponseWriter, r *nethttp.Request, addr string) error {
	if err := validName("address", addr); err != nil {
		return err
	}
	wan, err := boolParam(r.URL.Query(), "wan", false)
	if err != nil {
		return err
	}
	if _, err := a.b.Join(r.Context(), []string{addr}, wan); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentLeave(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	if err := a.b.Leave(r.Context()); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentForceLeave(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	if err := validName("node name", node); err != nil {
		return err
	}
	prune, err := boolParam(r.URL.Query(), "prune", false)
	if err != nil {
		return err
	}
	if err := a.b.ForceLeave(r.Context(), node, prune); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentReload(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	if err := a.b.Reload(r.Context()); err != nil {
		return err
	}
	return writeEmpty(w)
}

// writeEmpty is the 200 with no body Consul's agent writes answer with,
// typed as JSON like every other API answer.
func writeEmpty(w nethttp.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(nethttp.StatusOK)
	return nil
}

func (a *handler) agentServiceRegister(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var def config.ServiceDefinition
	if err := decodeBody(r, &def); err != nil {
		return err
	}
	if err := def.Validate(); err != nil {
		return badRequest("Invalid service definition: %v", err)
	}
	def.SetDefaults()
	if err := a.allow(r, acl.ResService, def.Name, acl.LevelWrite); err != nil {
		return err
	}
	if err := a.b.AddService(r.Context(), &def); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentServiceDeregister(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("service ID", id); err != nil {
		return err
	}
	if err := a.b.RemoveService(r.Context(), id); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentCheckRegister(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var def config.CheckDefinition
	if err := decodeBody(r, &def); err != nil {
		return err
	}
	if def.Name == "" {
		return badRequest("Missing check name")
	}
	if err := def.Validate(); err != nil {
		return badRequest("Invalid check definition: %v", err)
	}
	def.SetDefaults()
	if err := a.b.AddCheck(r.Context(), &def); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentCheckDeregister(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("check ID", id); err != nil {
		return err
	}
	if err := a.b.RemoveCheck(r.Context(), id); err != nil {
		return err
	}
	return writeEmpty(w)
}

// agentCheckTTL serves /v1/agent/check/{pass,warn,fail}/<id>?note=.
func (a *handler) agentCheckTTL(verb string) endpoint {
	status := map[string]string{
		"pass": structs.HealthPassing, "warn": structs.HealthWarning, "fail": structs.HealthCritical,
	}[verb]
	return func(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
		if err := validName("check ID", id); err != nil {
			return err
		}
		note := truncateOutput(r.URL.Query().Get("note"))
		if err := a.b.UpdateTTL(r.Context(), id, status, note); err != nil {
			return err
		}
		return writeEmpty(w)
	}
}

// checkUpdate is the /v1/agent/check/update/<id> body.
type checkUpdate struct {
	Status string
	Output string
}

func (a *handler) agentCheckUpdate(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("check ID", id); err != nil {
		return err
	}
	var u checkUpdate
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	switch u.Status {
	case structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	default:
		return badRequest("Invalid check status: %q", u.Status)
	}
	if err := a.b.UpdateTTL(r.Context(), id, u.Status, truncateOutput(u.Output)); err != nil {
		return err
	}
	return writeEmpty(w)
}

// truncateOutput keeps MaxCheckOutput bytes, marking the cut as Consul does.
func truncateOutput(s string) string {
	if len(s) <= MaxCheckOutput {
		return s
	}
	cut := strings.ToValidUTF8(s[:MaxCheckOutput], "")
	return cut + " ... (truncated)"
}

// maintenanceParams reads ?enable (required) and ?reason.
func maintenanceParams(r *nethttp.Request) (bool, string, error) {
	q := r.URL.Query()
	if _, ok := q["enable"]; !ok {
		return false, "", badRequest("Missing value for enable")
	}
	enable, err := boolParam(q, "enable", false)
	if err != nil {
		return false, "", badRequest("Invalid value for enable: %q", q.Get("enable"))
	}
	reason := q.Get("reason")
	if err := validText("reason", reason); err != nil {
		return false, "", err
	}
	return enable, reason, nil
}

func (a *handler) agentNodeMaintenance(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return err
	}
	if err := a.b.NodeMaintenance(r.Context(), enable, reason); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (a *handler) agentServiceMaintenance(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("service ID", id); err != nil {
		return err
	}
	enable, reason, err := maintenanceParams(r)
	if err != nil {
		return err
	}
	if err := a.b.ServiceMaintenance(r.Context(), id, enable, reason); err != nil {
		return err
	}
	return writeEmpty(w)
}
