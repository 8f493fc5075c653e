package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// DefaultReapInterval is how often RunReaper looks for services to reap
// when the caller passes 0 (Consul's check_reap_interval, 30 s): reaping is
// a slow safety net, not a health signal.
const DefaultReapInterval = 30 * time.Second

// Errors callers branch on.
var (
	ErrUnknownService = errors.New("local: unknown service")
	ErrUnknownCheck   = errors.New("local: unknown check")
)

// serviceState is one local service and whether the catalog matches it.
type serviceState struct {
	svc     *structs.NodeService // never mutated in place: replaced on change
	inSync  bool
	deleted bool // removed locally, still to be deregistered
	rev     uint64
}

// checkState is one local check and whether the catalog matches it.
type checkState struct {
	chk           *structs.HealthCheck // never mutated in place
	inSync        bool
	deleted       bool
	rev           uint64
	criticalSince time.Time     // zero unless Status is critical
	reapAfter     time.Duration // DeregisterCriticalServiceAfter; 0 = never
}

// State is the node's local services and checks. It is safe for concurrent
// use; it implements checks.Notifier through UpdateCheck.
type State struct {
	mu       sync.Mutex
	services map[string]*serviceState
	checks   map[string]*checkState
	rev      uint64 // bumped on every change; stamps the changed record
	notifyCh chan struct{}
	// watchCh is closed (and replaced) on every change: the broadcast
	// that hash-blocking reads of /v1/agent/service/<id> wait on.
	watchCh chan struct{}
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		services: map[string]*serviceState{},
		checks:   map[string]*checkState{},
		notifyCh: make(chan struct{}, 1),
		watchCh:  make(chan struct{}),
	}
}

// WatchCh returns a channel closed at the next change of any local
// service or check (any number of readers; take a new one after it fires).
func (s *State) WatchCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watchCh
}

// Notify returns a channel that receives (coalesced) after every change
// that needs syncing. It has a single consumer: the Syncer.
func (s *State) Notify() <-chan struct{} { return s.notifyCh }

// nextRevLocked stamps a record without waking the syncer: for records the
// syncer itself creates while reconciling.
func (s *State) nextRevLocked() uint64 {
	s.rev++
	return s.rev
}

// changedLocked stamps a new revision and wakes the syncer.
func (s *State) changedLocked() uint64 {
	s.rev++
	select {
	case s.notifyCh <- struct{}{}:
	default:
	}
	close(s.watchCh)
	s.watchCh = make(chan struct{})
	return s.rev
}

// AddService adds or replaces a service and adds checks for it. ID
// defaults to the service name and Weights to {1, 1}, as Consul's agent.
// Each check's ServiceID must be empty (it is set) or the service's ID.
func (s *State) AddService(svc *structs.NodeService, checks []*structs.HealthCheck) error {
	if svc == nil {
		return errors.New("local: nil service")
	}
	if svc.Service == "" {
		return errors.New("local: service name is required")
	}
	svc = copyService(svc)
	if svc.ID == "" {
		svc.ID = svc.Service
	}
	if svc.Weights == nil {
		svc.Weights = &structs.Weights{Passing: 1, Warning: 1}
	}
	svc.CreateIndex, svc.ModifyIndex = 0, 0
	prepared := make([]*structs.HealthCheck, 0, len(checks))
	for _, c := range checks {
		if c == nil {
			return errors.New("local: nil check")
		}
		c = copyCheck(c)
		if c.ServiceID == "" {
			c.ServiceID = svc.ID
		}
		if c.ServiceID != svc.ID {
			return fmt.Errorf("local: check %q belongs to service %q, not %q", c.CheckID, c.ServiceID, svc.ID)
		}
		if err := validateCheck(c); err != nil {
			return err
		}
		prepared = append(prepared, c)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.services[svc.ID]; old == nil || old.deleted || !sameService(old.svc, svc) {
		s.services[svc.ID] = &serviceState{svc: svc, rev: s.changedLocked()}
		// Checks carry the service's name: refresh the ones already here.
		for id, cs := range s.checks {
			if cs.chk.ServiceID == svc.ID && !cs.deleted && cs.chk.ServiceName != svc.Service {
				c := copyCheck(cs.chk)
				c.ServiceName = svc.Service
				s.replaceCheckLocked(id, c)
			}
		}
	}
	for _, c := range prepared {
		s.addCheckLocked(c)
	}
	return nil
}

// RemoveService removes a service and its checks.
func (s *State) RemoveService(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeServiceLocked(id)
}

func (s *State) removeServiceLocked(id string) error {
	ss := s.services[id]
	if ss == nil || ss.deleted {
		return fmt.Errorf("%w %q", ErrUnknownService, id)
	}
	rev := s.changedLocked()
	ss.deleted, ss.inSync, ss.rev = true, false, rev
	for _, cs := range s.checks {
		if cs.chk.ServiceID == id && !cs.deleted {
			cs.deleted, cs.inSync, cs.rev = true, false, rev
		}
	}
	return nil
}

// ServiceExists reports whether a (not removed) service has this ID.
func (s *State) ServiceExists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.services[id]
	return ss != nil && !ss.deleted
}

// Service returns a copy of one service, or nil.
func (s *State) Service(id string) *structs.NodeService {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.services[id]; ss != nil && !ss.deleted {
		return copyService(ss.svc)
	}
	return nil
}

// Services returns copies of the local services by ID.
func (s *State) Services() map[string]*structs.NodeService {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*structs.NodeService, len(s.services))
	for id, ss := range s.services {
		if !ss.deleted {
			out[id] = copyService(ss.svc)
		}
	}
	return out
}

// AddCheck adds or replaces a check. A service check's service must exist.
// Status defaults to critical (Consul's: unhealthy until proven healthy).
func (s *State) AddCheck(chk *structs.HealthCheck) error {
	if chk == nil {
		return errors.New("local: nil check")
	}
	chk = copyCheck(chk)
	if err := validateCheck(chk); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if chk.ServiceID != "" {
		ss := s.services[chk.ServiceID]
		if ss == nil || ss.deleted {
			return fmt.Errorf("local: check %q: %w %q", chk.CheckID, ErrUnknownService, chk.ServiceID)
		}
	}
	s.addCheckLocked(chk)
	return nil
}

func validateCheck(c *structs.HealthCheck) error {
	if c.CheckID == "" {
		return errors.New("local: check ID is required")
	}
	switch c.Status {
	case "":
		c.Status = structs.HealthCritical
	case structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	default:
		return fmt.Errorf("local: check %q: invalid status %q", c.CheckID, c.Status)
	}
	if c.Name == "" {
		c.Name = c.CheckID
	}
	c.CreateIndex, c.ModifyIndex = 0, 0
	return nil
}

// addCheckLocked stores c (already validated), keeping the sync flag and
// the reap settings of an identical existing check.
func (s *State) addCheckLocked(c *structs.HealthCheck) {
	if c.ServiceID != "" {
		if ss := s.services[c.ServiceID]; ss != nil {
			c.ServiceName = ss.svc.Service
		}
	}
	old := s.checks[c.CheckID]
	if old != nil && !old.deleted && sameCheck(old.chk, c) {
		return
	}
	cs := &checkState{chk: c, rev: s.changedLocked()}
	if old != nil && !old.deleted {
		cs.reapAfter = old.reapAfter
		if old.chk.Status == structs.HealthCritical {
			cs.criticalSince = old.criticalSince
		}
	}
	if c.Status == structs.HealthCritical && cs.criticalSince.IsZero() {
		cs.criticalSince = time.Now()
	}
	s.checks[c.CheckID] = cs
}

// replaceCheckLocked swaps in a changed copy of a check.
func (s *State) replaceCheckLocked(id string, c *structs.HealthCheck) {
	cs := s.checks[id]
	if c.Status != structs.HealthCritical {
		cs.criticalSince = time.Time{}
	} else if cs.chk.Status != structs.HealthCritical {
		cs.criticalSince = time.Now()
	}
	cs.chk, cs.inSync, cs.rev = c, false, s.changedLocked()
}

// SetDeregisterCriticalServiceAfter makes the reaper remove the check's
// service once the check has been critical for longer than d (0 disables).
func (s *State) SetDeregisterCriticalServiceAfter(checkID string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.checks[checkID]
	if cs == nil || cs.deleted {
		return fmt.Errorf("%w %q", ErrUnknownCheck, checkID)
	}
	if cs.chk.ServiceID == "" && d > 0 {
		return fmt.Errorf("local: check %q: deregister_critical_service_after needs a service check", checkID)
	}
	cs.reapAfter = d
	return nil
}

// RemoveCheck removes a check.
func (s *State) RemoveCheck(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.checks[id]
	if cs == nil || cs.deleted {
		return fmt.Errorf("%w %q", ErrUnknownCheck, id)
	}
	cs.deleted, cs.inSync, cs.rev = true, false, s.changedLocked()
	return nil
}

// UpdateCheck records a check result. Unknown checks are ignored (a runner
// may report once after its check was removed); an unchanged status and
// output changes nothing, so steady checks cause no catalog writes.
func (s *State) UpdateCheck(id, status, output string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.checks[id]
	if cs == nil || cs.deleted {
		return
	}
	if cs.chk.Status == status && cs.chk.Output == output {
		return
	}
	c := copyCheck(cs.chk)
	c.Status, c.Output = status, output
	s.replaceCheckLocked(id, c)
}

// Check returns a copy of one check, or nil.
func (s *State) Check(id string) *structs.HealthCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.checks[id]; cs != nil && !cs.deleted {
		return copyCheck(cs.chk)
	}
	return nil
}

// Checks returns copies of the local checks by ID.
func (s *State) Checks() map[string]*structs.HealthCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*structs.HealthCheck, len(s.checks))
	for id, cs := range s.checks {
		if !cs.deleted {
			out[id] = copyCheck(cs.chk)
		}
	}
	return out
}

// ReapCriticalServices removes every service that has a check critical for
// longer than its DeregisterCriticalServiceAfter, as of now, and returns
// their IDs (sorted).
func (s *State) ReapCriticalServices(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var reap []string
	for _, cs := range s.checks {
		if cs.deleted || cs.reapAfter <= 0 || cs.chk.Status != structs.HealthCritical || cs.criticalSince.IsZero() {
			continue
		}
		if now.Sub(cs.criticalSince) > cs.reapAfter && !slices.Contains(reap, cs.chk.ServiceID) {
			reap = append(reap, cs.chk.ServiceID)
		}
	}
	slices.Sort(reap)
	for _, id := range reap {
		_ = s.removeServiceLocked(id) // present: its check is not deleted
	}
	return reap
}

// RunReaper reaps critical services every interval (DefaultReapInterval if
// 0) until ctx is done. onReap, if not nil, is called for each reaped
// service without State's lock held, so the runtime can stop its checks.
func (s *State) RunReaper(ctx context.Context, interval time.Duration, onReap func(serviceID string)) {
	if interval <= 0 {
		interval = DefaultReapInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, id := range s.ReapCriticalServices(now) {
				if onReap != nil {
					onReap(id)
				}
			}
		}
	}
}

func copyService(s *structs.NodeService) *structs.NodeService {
	c := *s
	c.Tags = slices.Clone(s.Tags)
	c.Meta = maps.Clone(s.Meta)
	if s.Weights != nil {
		w := *s.Weights
		c.Weights = &w
	}
	return &c
}

func copyCheck(h *structs.HealthCheck) *structs.HealthCheck {
	c := *h
	c.ServiceTags = slices.Clone(h.ServiceTags)
	return &c
}

// sameService compares what the catalog stores, ignoring raft indexes and
// treating nil and empty collections (and nil and default weights) alike,
// since the wire does not preserve the difference.
func sameService(a, b *structs.NodeService) bool {
	return a.ID == b.ID && a.Service == b.Service &&
		slices.Equal(a.Tags, b.Tags) &&
		a.Address == b.Address && a.Port == b.Port &&
		maps.Equal(a.Meta, b.Meta) &&
		weightsOf(a) == weightsOf(b) &&
		a.EnableTagOverride == b.EnableTagOverride
}

func weightsOf(s *structs.NodeService) structs.Weights {
	if s.Weights == nil {
		return structs.Weights{Passing: 1, Warning: 1}
	}
	return *s.Weights
}

// sameCheck compares what the agent owns. Node is the syncer's to fill and
// ServiceTags the catalog's to derive from the service, so neither counts.
func sameCheck(a, b *structs.HealthCheck) bool {
	return a.CheckID == b.CheckID && a.Name == b.Name && a.Status == b.Status &&
		a.Notes == b.Notes && a.Output == b.Output &&
		a.ServiceID == b.ServiceID && a.ServiceName == b.ServiceName &&
		a.Type == b.Type
}
