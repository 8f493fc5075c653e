package agent

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"github.com/cairnd/cairn/agent/checks"
	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
	"go.uber.org/zap"
)

// checkSet owns the running check runners by check ID, and remembers which
// services and checks came from config files (a reload replaces exactly
// those, as Consul does; API registrations survive a reload).
type checkSet struct {
	a       *Agent
	mu      sync.Mutex
	runners map[string]checks.Runner
	ttls    map[string]*checks.TTL
	fromCfg struct {
		services map[string]bool
		checks   map[string]bool
	}
}

func newCheckSet(a *Agent) *checkSet {
	c := &checkSet{a: a, runners: map[string]checks.Runner{}, ttls: map[string]*checks.TTL{}}
	c.fromCfg.services = map[string]bool{}
	c.fromCfg.checks = map[string]bool{}
	return c
}

func (c *checkSet) start(id string, r checks.Runner) {
	c.mu.Lock()
	old := c.runners[id]
	c.runners[id] = r
	if t, ok := r.(*checks.TTL); ok {
		c.ttls[id] = t
	} else {
		delete(c.ttls, id)
	}
	c.mu.Unlock()
	if old != nil {
		old.Stop()
	}
	r.Start()
}

func (c *checkSet) stop(id string) {
	c.mu.Lock()
	r := c.runners[id]
	delete(c.runners, id)
	delete(c.ttls, id)
	c.mu.Unlock()
	if r != nil {
		r.Stop()
	}
}

func (c *checkSet) ttl(id string) *checks.TTL {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttls[id]
}

func (c *checkSet) stopAll() {
	c.mu.Lock()
	rs := c.runners
	c.runners = map[string]checks.Runner{}
	c.ttls = map[string]*checks.TTL{}
	c.mu.Unlock()
	for _, r := range rs {
		r.Stop()
	}
}

// removeForService stops the runners of a reaped service's checks.
func (c *checkSet) removeForService(serviceID string) {
	for id, chk := range c.a.local.Checks() {
		if chk.ServiceID == serviceID {
			c.stop(id)
		}
	}
}

// checkDefinition converts a config check to the runner's definition.
func checkDefinition(d *config.CheckDefinition, id, serviceID string) checks.Definition {
	return checks.Definition{
		ID: id, Name: d.Name, Notes: d.Notes, ServiceID: serviceID, Status: d.Status,
		HTTP: d.HTTP, Method: d.Method, Header: d.Header, TLSSkipVerify: d.TLSSkipVerify,
		TCP: d.TCP, TTL: d.TTL.Duration(), Args: d.Args,
		Interval: d.Interval.Duration(), Timeout: d.Timeout.Duration(),
		DeregisterCriticalServiceAfter: d.DeregisterCriticalServiceAfter.Duration(),
	}
}

func (a *Agent) checkOptions() checks.Options {
	return checks.Options{AllowScripts: a.live.Load().EnableLocalScriptChecks, Logger: a.log.Named("checks")}
}

// addService registers a local service with its checks and starts them.
func (a *Agent) addService(def *config.ServiceDefinition, fromConfig bool) error {
	def.SetDefaults()
	if err := def.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	all := def.AllChecks()
	allowScripts := a.live.Load().EnableLocalScriptChecks
	for _, cd := range all {
		if err := cd.AllowedBy(allowScripts); err != nil {
			return err
		}
	}
	svc := &structs.NodeService{
		ID: def.ID, Service: def.Name, Tags: def.Tags, Address: def.Address, Port: def.Port,
		Meta: def.Meta, Weights: &structs.Weights{Passing: def.Weights.Passing, Warning: def.Weights.Warning},
		EnableTagOverride: def.EnableTagOverride,
	}
	defs := make([]checks.Definition, 0, len(all))
	hcs := make([]*structs.HealthCheck, 0, len(all))
	for i, cd := range all {
		id := cd.ID
		if id == "" {
			id = "service:" + svc.ID
			if len(all) > 1 {
				id += ":" + strconv.Itoa(i+1)
			}
		}
		d := checkDefinition(cd, id, svc.ID)
		if err := d.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		hc := d.HealthCheck(a.cfg.NodeName)
		if cur := a.local.Check(id); cur != nil && cd.Status == "" {
			hc.Status, hc.Output = cur.Status, cur.Output // keep state across re-registration
		}
		defs = append(defs, d)
		hcs = append(hcs, hc)
	}
	// Checks of the old registration that the new one drops.
	for id, chk := range a.local.Checks() {
		if chk.ServiceID == svc.ID && !containsCheck(hcs, id) {
			a.checks.stop(id)
		}
	}
	if err := a.local.AddService(svc, hcs); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for _, d := range defs {
		if err := a.runCheck(d); err != nil {
			return err
		}
	}
	a.checks.mu.Lock()
	if fromConfig {
		a.checks.fromCfg.services[svc.ID] = true
	} else {
		delete(a.checks.fromCfg.services, svc.ID)
	}
	a.checks.mu.Unlock()
	return nil
}

func containsCheck(hcs []*structs.HealthCheck, id string) bool {
	for _, h := range hcs {
		if h.CheckID == id {
			return true
		}
	}
	return false
}

func (a *Agent) runCheck(d checks.Definition) error {
	r, err := checks.New(d, a.local, a.checkOptions())
	if err != nil {
		return err
	}
	if after := d.ReapAfter(); after > 0 {
		a.local.SetDeregisterCriticalServiceAfter(d.ID, after)
	}
	a.checks.start(d.ID, r)
	return nil
}

func (a *Agent) addCheck(def *config.CheckDefinition, fromConfig bool) error {
	def.SetDefaults()
	if err := def.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := def.AllowedBy(a.live.Load().EnableLocalScriptChecks); err != nil {
		return err
	}
	id := def.ID
	if id == "" {
		id = def.Name
	}
	if def.ServiceID != "" && !a.local.ServiceExists(def.ServiceID) {
		return fmt.Errorf("%w: ServiceID %q does not exist", ErrInvalid, def.ServiceID)
	}
	d := checkDefinition(def, id, def.ServiceID)
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	hc := d.HealthCheck(a.cfg.NodeName)
	if cur := a.local.Check(id); cur != nil && def.Status == "" {
		hc.Status, hc.Output = cur.Status, cur.Output
	}
	if err := a.local.AddCheck(hc); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := a.runCheck(d); err != nil {
		return err
	}
	a.checks.mu.Lock()
	if fromConfig {
		a.checks.fromCfg.checks[id] = true
	} else {
		delete(a.checks.fromCfg.checks, id)
	}
	a.checks.mu.Unlock()
	return nil
}

func (a *Agent) removeService(id string) error {
	if !a.local.ServiceExists(id) {
		return fmt.Errorf("%w: unknown service %q", ErrNotFound, id)
	}
	for cid, chk := range a.local.Checks() {
		if chk.ServiceID == id {
			a.checks.stop(cid)
		}
	}
	if err := a.local.RemoveService(id); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	a.checks.mu.Lock()
	delete(a.checks.fromCfg.services, id)
	a.checks.mu.Unlock()
	return nil
}

func (a *Agent) removeCheck(id string) error {
	if a.local.Check(id) == nil {
		return fmt.Errorf("%w: unknown check %q", ErrNotFound, id)
	}
	a.checks.stop(id)
	if err := a.local.RemoveCheck(id); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	a.checks.mu.Lock()
	delete(a.checks.fromCfg.checks, id)
	a.checks.mu.Unlock()
	return nil
}

// Reload re-reads the config dirs and applies what may change in place
// (config.Reloadable); the rest of the new configuration is ignored until
// a restart. On any error the running configuration stays untouched and
// the error is returned (and logged by the caller).
func (a *Agent) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := config.Load(a.opts.ConfigDirs, a.opts.Apply)
	if err != nil {
		return err
	}
	logConfigWarnings(a.log, cfg)
	next := cfg.Reloadable()
	if err := validateDefinitions(next); err != nil {
		return err
	}
	if err := a.reloadTLS(cfg); err != nil {
		return err
	}
	prev := a.live.Swap(next)

	// Push the change to the parts that keep their own copy.
	if next.LogLevel != prev.LogLevel {
		if err := a.mon.SetLevel(next.LogLevel); err != nil {
			a.log.Error("reload: log level", zap.Error(err)) // Load validated it: not expected
		}
	}
	if !maps.Equal(next.NodeMeta, prev.NodeMeta) {
		a.syncer.SetNodeMeta(next.NodeMeta)
	}
	a.reloadDefinitions(next)
	a.log.Info("configuration reloaded", zap.Int("services", len(next.Services)), zap.Int("checks", len(next.Checks)))
	return nil
}

// validateDefinitions sets the defaults of every new definition and checks
// it, before a reload publishes or touches anything.
func validateDefinitions(r *config.Reloadable) error {
	for i := range r.Services {
		d := &r.Services[i]
		d.SetDefaults()
		if err := d.Validate(); err != nil {
			return fmt.Errorf("reload: service %q: %w", d.Name, err)
		}
		for _, cd := range d.AllChecks() {
			if err := cd.AllowedBy(r.EnableLocalScriptChecks); err != nil {
				return fmt.Errorf("reload: service %q: %w", d.Name, err)
			}
		}
	}
	for i := range r.Checks {
		d := &r.Checks[i]
		d.SetDefaults()
		if err := d.Validate(); err != nil {
			return fmt.Errorf("reload: check %q: %w", d.Name, err)
		}
		if err := d.AllowedBy(r.EnableLocalScriptChecks); err != nil {
			return fmt.Errorf("reload: check %q: %w", d.Name, err)
		}
	}
	return nil
}

// reloadDefinitions replaces the services and checks that came from
// config files with next's; API registrations are left alone.
func (a *Agent) reloadDefinitions(next *config.Reloadable) {
	a.checks.mu.Lock()
	oldSvcs := a.checks.fromCfg.services
	oldChecks := a.checks.fromCfg.checks
	a.checks.fromCfg.services = map[string]bool{}
	a.checks.fromCfg.checks = map[string]bool{}
	a.checks.mu.Unlock()
	keepSvc := map[string]bool{}
	for i := range next.Services {
		d := &next.Services[i]
		keepSvc[d.ID] = true
		if err := a.addService(d, true); err != nil {
			a.log.Error("reload: service", zap.String("service", d.Name), zap.Error(err))
		}
	}
	for id := range oldSvcs {
		if !keepSvc[id] {
			a.removeService(id)
		}
	}
	keepChk := map[string]bool{}
	for i := range next.Checks {
		d := &next.Checks[i]
		id := d.ID
		if id == "" {
			id = d.Name
		}
		keepChk[id] = true
		if err := a.addCheck(d, true); err != nil {
			a.log.Error("reload: check", zap.String("check", id), zap.Error(err))
		}
	}
	for id := range oldChecks {
		if !keepChk[id] {
			a.removeCheck(id)
		}
	}
}

// logConfigWarnings logs Load's warnings (skipped files, ignored Consul
// keys), one line each, as Consul does at start and reload.
func logConfigWarnings(log *zap.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
}
