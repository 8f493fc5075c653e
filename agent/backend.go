package agent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/cairnd/cairn/agent/config"
	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The agent is the HTTP API's backend, keyring included.
var (
	_ agenthttp.Backend        = (*Agent)(nil)
	_ agenthttp.KeyringBackend = (*Agent)(nil)
)

// eventRingSize is how many user events /v1/event/list remembers (Consul
// keeps 256).
const eventRingSize = 256

type eventRing struct {
	mu     sync.Mutex
	events []structs.UserEvent
	seen   map[string]bool
	notify chan struct{}
}

func newEventRing() *eventRing {
	return &eventRing{seen: map[string]bool{}, notify: make(chan struct{})}
}

func (r *eventRing) add(ev structs.UserEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[ev.ID] {
		return false
	}
	r.seen[ev.ID] = true
	r.events = append(r.events, ev)
	if len(r.events) > eventRingSize {
		delete(r.seen, r.events[0].ID)
		r.events = append(r.events[:0:0], r.events[1:]...)
	}
	close(r.notify)
	r.notify = make(chan struct{})
	return true
}

func (r *eventRing) list() ([]structs.UserEvent, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]structs.UserEvent(nil), r.events...), r.notify
}

// onUserEvent records a user event this agent should see (its filters
// match this node and its services), as Consul's agent does.
func (a *Agent) onUserEvent(name string, payload []byte, ltime uint64) {
	if !strings.HasPrefix(name, server.UserEventPrefix) {
		return
	}
	var ev structs.UserEvent
	if err := structs.DecodeMsgpack(payload, &ev); err != nil {
		a.log.Warn("bad user event payload", zap.String("name", name), zap.Error(err))
		return
	}
	ev.LTime = ltime
	if !a.eventMatches(&ev) {
		return
	}
	if a.events.add(ev) {
		a.log.Debug("user event", zap.String("name", ev.Name), zap.String("id", ev.ID))
		if ev.Name == remoteExecEvent {
			a.startRemoteExec(ev)
		}
	}
}

func (a *Agent) eventMatches(ev *structs.UserEvent) bool {
	if ev.NodeFilter != "" {
		re, err := regexp.Compile(ev.NodeFilter)
		if err != nil || !re.MatchString(a.cfg.NodeName) {
			return false
		}
	}
	if ev.ServiceFilter != "" {
		re, err := regexp.Compile(ev.ServiceFilter)
		if err != nil {
			return false
		}
		var tagRE *regexp.Regexp
		if ev.TagFilter != "" {
			if tagRE, err = regexp.Compile(ev.TagFilter); err != nil {
				return false
			}
		}
		ok := false
		for _, svc := range a.local.Services() {
			if !re.MatchString(svc.Service) {
				continue
			}
			if tagRE == nil {
				ok = true
				break
			}
			for _, t := range svc.Tags {
				if tagRE.MatchString(t) {
					ok = true
				}
			}
		}
		return ok
	}
	return true
}

// UserEvents implements agenthttp.Backend.
func (a *Agent) UserEvents() []structs.UserEvent {
	evs, _ := a.events.list()
	return evs
}

// Datacenter implements agenthttp.Backend.
func (a *Agent) Datacenter() string { return a.cfg.Datacenter }

// NodeName implements agenthttp.Backend.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Self implements agenthttp.Backend (the fields the official clients read,
// plus "Addrs": where each listener is bound, see Addrs).
func (a *Agent) Self() map[string]any {
	cfg := a.cfg
	var member any
	if p := a.lanPool(); p != nil {
		member = toMember(p.LocalMember())
	}
	return map[string]any{
		"Config": map[string]any{
			"Datacenter": cfg.Datacenter, "NodeName": cfg.NodeName, "NodeID": cfg.NodeID,
			"Server": cfg.Server, "Revision": "", "Version": Version,
			"Domain": cfg.Domain, "ClientAddr": cfg.ClientAddr, "AdvertiseAddr": a.advertise(),
		},
		"Member": member,
		"Meta":   a.live.Load().NodeMeta,
		"Stats":  a.Stats(),
		"Addrs":  a.addrs,
	}
}

// Stats are the `cairn info` sections.
func (a *Agent) Stats() map[string]map[string]string {
	cfg := a.cfg
	out := map[string]map[string]string{
		"agent": {"server": fmt.Sprint(cfg.Server), "node": cfg.NodeName, "datacenter": cfg.Datacenter, "checks": fmt.Sprint(len(a.local.Checks())), "services": fmt.Sprint(len(a.local.Services()))},
		"cairn": {"version": Version},
	}
	if a.srv != nil {
		out["raft"] = a.srv.Raft().Stats()
		out["cairn"]["leader"] = fmt.Sprint(a.srv.IsLeader())
		out["cairn"]["leader_addr"] = a.srv.Leader()
		if w := a.srv.WAN(); w != nil {
			out["serf_wan"] = w.Serf().Stats()
		}
	}
	if p := a.lanPool(); p != nil {
		out["serf_lan"] = p.Serf().Stats()
	}
	out["runtime"] = map[string]string{
		"goroutines": fmt.Sprint(runtime.NumGoroutine()),
		"arch":       runtime.GOARCH,
		"os":         runtime.GOOS,
		"version":    runtime.Version(),
		"cpu_count":  fmt.Sprint(runtime.NumCPU()),
		"max_procs":  fmt.Sprint(runtime.GOMAXPROCS(0)),
	}
	return out
}

// Keyring implements agenthttp.KeyringBackend: the operation runs on the
// LAN pool and, on servers, on the WAN pool too (WAN first, as Consul
// lists it).
func (a *Agent) Keyring(ctx context.Context, op, key string) ([]agenthttp.KeyringResponse, error) {
	type target struct {
		pool *gossip.Pool
		wan  bool
	}
	var targets []target
	if a.srv != nil && a.srv.WAN() != nil {
		targets = append(targets, target{a.srv.WAN(), true})
	}
	if p := a.lanPool(); p != nil {
		targets = append(targets, target{p, false})
	}
	var out []agenthttp.KeyringResponse
	var errs []error
	for _, t := range targets {
		res, err := t.pool.Keyring(gossip.KeyOp(op), key)
		if errors.Is(err, gossip.ErrEncryptionDisabled) {
			return nil, apiError(fmt.Errorf("%w: %v", ErrInvalid, err))
		}
		if err != nil {
			errs = append(errs, err)
		}
		if res == nil {
			continue
		}
		out = append(out, agenthttp.KeyringResponse{
			WAN: t.wan, Datacenter: a.cfg.Datacenter, Messages: res.Messages,
			Keys: res.Keys, PrimaryKeys: res.PrimaryKeys, NumNodes: res.NumNodes,
		})
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Warn("keyring operation failed", zap.String("op", op), zap.Error(err))
		return out, err
	}
	a.log.Info("keyring operation done", zap.String("op", op))
	return out, nil
}

func toMember(m serf.Member) agenthttp.Member {
	return agenthttp.Member{
		Name: m.Name, Addr: m.Addr.String(), Port: m.Port, Tags: m.Tags, Status: int(m.Status),
		ProtocolMin: m.ProtocolMin, ProtocolMax: m.ProtocolMax, ProtocolCur: m.ProtocolCur,
		DelegateMin: m.DelegateMin, DelegateMax: m.DelegateMax, DelegateCur: m.DelegateCur,
	}
}

func (a *Agent) pool(wan bool) (*gossip.Pool, error) {
	if wan {
		if a.srv == nil || a.srv.WAN() == nil {
			return nil, fmt.Errorf("%w: this agent is not in a WAN pool (servers only)", ErrInvalid)
		}
		return a.srv.WAN(), nil
	}
	p := a.lanPool()
	if p == nil {
		return nil, errors.New("agent: no LAN pool")
	}
	return p, nil
}

// Members implements agenthttp.Backend.
func (a *Agent) Members(wan bool) []agenthttp.Member {
	p, err := a.pool(wan)
	if err != nil {
		return nil
	}
	ms := p.Members()
	out := make([]agenthttp.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, toMember(m))
	}
	return out
}

// Join implements agenthttp.Backend.
func (a *Agent) Join(ctx context.Context, addrs []string, wan bool) (int, error) {
	p, err := a.pool(wan)
	if err != nil {
		return 0, apiError(err)
	}
	return p.Join(addrs)
}

// Leave leaves gracefully and then shuts the agent down.
func (a *Agent) Leave(ctx context.Context) error {
	var err error
	if a.srv != nil {
		err = a.srv.Leave(ctx)
	} else if a.lan != nil {
		err = a.lan.Leave()
	}
	a.leaveOnce.Do(func() { close(a.leaveCh) })
	return err
}

// ForceLeave implements agenthttp.Backend.
func (a *Agent) ForceLeave(ctx context.Context, node string, prune bool) error {
	p := a.lanPool()
	var err error
	if prune {
		err = p.Serf().RemoveFailedNodePrune(node)
	} else {
		err = p.Serf().RemoveFailedNode(node)
	}
	if err != nil {
		return err
	}
	if a.srv != nil && a.srv.WAN() != nil {
		a.srv.WAN().Serf().RemoveFailedNode(node + "." + a.cfg.Datacenter)
	}
	return nil
}

// LocalServices implements agenthttp.Backend.
func (a *Agent) LocalServices() map[string]*structs.NodeService { return a.local.Services() }

// LocalChecks implements agenthttp.Backend.
func (a *Agent) LocalChecks() map[string]*structs.HealthCheck { return a.local.Checks() }

// AddService implements agenthttp.Backend.
func (a *Agent) AddService(ctx context.Context, def *config.ServiceDefinition) error {
	return apiError(a.addService(def, false))
}

// RemoveService implements agenthttp.Backend.
func (a *Agent) RemoveService(ctx context.Context, id string) error {
	return apiError(a.removeService(id))
}

// AddCheck implements agenthttp.Backend.
func (a *Agent) AddCheck(ctx context.Context, def *config.CheckDefinition) error {
	return apiError(a.addCheck(def, false))
}

// RemoveCheck implements agenthttp.Backend.
func (a *Agent) RemoveCheck(ctx context.Context, id string) error {
	return apiError(a.removeCheck(id))
}

// UpdateTTL implements agenthttp.Backend.
func (a *Agent) UpdateTTL(ctx context.Context, checkID, status, output string) error {
	return apiError(a.updateTTL(checkID, status, output))
}

func (a *Agent) updateTTL(checkID, status, output string) error {
	if a.local.Check(checkID) == nil {
		return fmt.Errorf("%w: unknown check %q", ErrNotFound, checkID)
	}
	t := a.checks.ttl(checkID)
	if t == nil {
		return fmt.Errorf("%w: check %q is not a TTL check", ErrInvalid, checkID)
	}
	if err := t.Update(status, output); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// ServiceMaintenance implements agenthttp.Backend.
func (a *Agent) ServiceMaintenance(ctx context.Context, serviceID string, enable bool, reason string) error {
	if !a.local.ServiceExists(serviceID) {
		return apiError(fmt.Errorf("%w: unknown service %q", ErrNotFound, serviceID))
	}
	if enable {
		return a.local.EnableServiceMaintenance(serviceID, reason)
	}
	return a.local.DisableServiceMaintenance(serviceID)
}

// NodeMaintenance implements agenthttp.Backend.
func (a *Agent) NodeMaintenance(ctx context.Context, enable bool, reason string) error {
	if enable {
		a.local.EnableNodeMaintenance(reason)
	} else {
		a.local.DisableNodeMaintenance()
	}
	return nil
}

// Monitor implements agenthttp.Backend.
func (a *Agent) Monitor(ctx context.Context, level string) (<-chan []byte, error) {
	ch, err := a.mon.Subscribe(ctx, level)
	if err != nil {
		return nil, apiError(fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	return ch, nil
}

// Metrics implements agenthttp.Backend: the agent's registry plus the
// serf membership gauge, which is computed from the LAN pool at scrape
// time (a fresh registry per scrape keeps the Agent free of extra state).
func (a *Agent) Metrics() prometheus.Gatherer {
	serfReg := prometheus.NewRegistry()
	serfReg.MustRegister(serfMembersCollector{a})
	return prometheus.Gatherers{a.reg, serfReg}
}

// serfMembersCollector exports cairn_serf_members{status}: LAN members
// by status, as this agent sees them (DESIGN.md's observability contract).
type serfMembersCollector struct{ a *Agent }

func (serfMembersCollector) desc() *prometheus.Desc {
	return prometheus.NewDesc("cairn_serf_members",
		"Serf LAN members by status, as this agent sees them.", []string{"status"}, nil)
}

func (c serfMembersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc() }

func (c serfMembersCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"alive": 0, "leaving": 0, "left": 0, "failed": 0}
	if p := c.a.lanPool(); p != nil {
		for _, m := range p.Members() {
			counts[m.Status.String()]++
		}
	}
	desc := c.desc()
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), status)
	}
}

// LocalChanged implements agenthttp.LocalWatcher.
func (a *Agent) LocalChanged() <-chan struct{} { return a.local.WatchCh() }

// TranslateWANAddrs implements agenthttp.TranslateBackend.
func (a *Agent) TranslateWANAddrs() bool { return a.cfg.TranslateWANAddrs }
