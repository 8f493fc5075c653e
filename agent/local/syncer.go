package local

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// Anti-entropy timing (Consul's agent/ae values where it has them).
const (
	// DefaultSyncInterval is the base period of full syncs (Consul: 1m).
	DefaultSyncInterval = time.Minute
	// DefaultChangeDelay coalesces a burst of local changes (a service
	// registered with five checks, a reload) into one partial sync.
	DefaultChangeDelay = 100 * time.Millisecond
	// DefaultRetryMin and DefaultRetryMax bound the backoff after a failed
	// sync; 15 s is Consul's retryFailIntv, the ceiling here.
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = 15 * time.Second
	// scaleThreshold is the cluster size from which the full-sync period
	// grows, so a 10 000-node cluster does not flood the servers with
	// syncs (Consul's aeScaleThreshold).
	scaleThreshold = 128
)

// RPCer is the one call the syncer makes to the server tier (the
// forwarder on a client agent, the local server endpoint on a server).
type RPCer interface {
	RPC(ctx context.Context, method string, args, reply any) error
}

// SyncConfig identifies the node the Syncer keeps registered.
type SyncConfig struct {
	Datacenter      string
	NodeName        string
	NodeID          string
	Address         string
	TaggedAddresses map[string]string
	// NodeMeta is the meta at start; SetNodeMeta replaces it.
	NodeMeta map[string]string
	// ClusterSize reports the LAN member count; nil means 1.
	ClusterSize func() int

	// Interval is the base full-sync period (0: DefaultSyncInterval).
	Interval time.Duration
	// ChangeDelay is how long a local change waits for company (0:
	// DefaultChangeDelay).
	ChangeDelay time.Duration
	// RetryMin / RetryMax bound the retry backoff (0: the defaults).
	RetryMin, RetryMax time.Duration
}

// Syncer is the anti-entropy loop: it makes the catalog's record of this
// node match State.
type Syncer struct {
	cfg    SyncConfig
	state  *State
	rpc    RPCer
	logger *zap.Logger

	fullCh chan struct{} // TriggerFull
	// nodeMeta is the node meta to keep in the catalog: a reload swaps it
	// (SetNodeMeta) while a sync may be reading it.
	nodeMeta atomic.Pointer[map[string]string]

	// mu serialises syncs; nodeInSync is the catalog's copy of the node's
	// own fields (address, meta) matching cfg.
	mu         sync.Mutex
	nodeInSync bool
}

// NewSyncer returns a Syncer; Run starts it.
func NewSyncer(cfg SyncConfig, st *State, rpc RPCer, logger *zap.Logger) *Syncer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSyncInterval
	}
	if cfg.ChangeDelay <= 0 {
		cfg.ChangeDelay = DefaultChangeDelay
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Syncer{cfg: cfg, state: st, rpc: rpc, logger: logger, fullCh: make(chan struct{}, 1)}
	meta := maps.Clone(cfg.NodeMeta)
	s.nodeMeta.Store(&meta)
	return s
}

// SetNodeMeta replaces the node meta the catalog should hold (a reload
// changed node_meta) and asks for a full sync, which finds the catalog's
// node record different and re-registers it.
func (s *Syncer) SetNodeMeta(meta map[string]string) {
	m := maps.Clone(meta)
	s.nodeMeta.Store(&m)
	s.TriggerFull()
}

func (s *Syncer) meta() map[string]string { return *s.nodeMeta.Load() }

// TriggerFull asks Run for a full sync soon (e.g. after a server joined).
func (s *Syncer) TriggerFull() {
	select {
	case s.fullCh <- struct{}{}:
	default:
	}
}

// Run syncs until ctx is done: a full sync at start (retried with backoff
// until a server answers), a partial sync ChangeDelay after local changes,
// and a full sync every Interval plus a random stagger that grows with the
// cluster size (Consul's: Interval + rand[0, aeScale(Interval, n))).
// It returns nil when ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	var (
		full      = time.NewTimer(0) // first full sync at once
		partial   = time.NewTimer(time.Hour)
		partialOn bool
		synced    bool // a full sync succeeded: partial syncs make sense
		failures  int
	)
	partial.Stop()
	defer full.Stop()
	defer partial.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.fullCh:
			full.Reset(0)
		case <-s.state.Notify():
			if synced && !partialOn {
				partialOn = true
				partial.Reset(s.cfg.ChangeDelay)
			}
		case <-partial.C:
			partialOn = false
			if err := s.SyncChanges(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failures++
				wait := s.backoff(failures)
				s.logger.Warn("partial sync failed; full sync scheduled", zap.Error(err), zap.Duration("retry_in", wait))
				full.Reset(wait)
			}
		case <-full.C:
			partialOn = false
			partial.Stop()
			if err := s.SyncFull(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failures++
				wait := s.backoff(failures)
				s.logger.Warn("full sync failed", zap.Error(err), zap.Duration("retry_in", wait))
				full.Reset(wait)
				continue
			}
			failures, synced = 0, true
			full.Reset(s.nextFull())
		}
	}
}

// nextFull is the wait before the next periodic full sync.
func (s *Syncer) nextFull() time.Duration {
	n := 1
	if s.cfg.ClusterSize != nil {
		n = s.cfg.ClusterSize()
	}
	return s.cfg.Interval + randomStagger(aeScale(s.cfg.Interval, n))
}

// backoff doubles from RetryMin to RetryMax, plus up to half again as
// jitter so agents that lost the servers together do not return together.
func (s *Syncer) backoff(failures int) time.Duration {
	d := s.cfg.RetryMin
	for i := 1; i < failures && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMax)
	return d + randomStagger(d/2)
}

// aeScale stretches d for clusters above scaleThreshold nodes:
// d * (ceil(log2(n) - log2(128)) + 1), as Consul's.
func aeScale(d time.Duration, n int) time.Duration {
	if n <= scaleThreshold {
		return d
	}
	mult := math.Ceil(math.Log2(float64(n))-math.Log2(scaleThreshold)) + 1
	return time.Duration(mult) * d
}

func randomStagger(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// SyncFull reads the catalog's view of this node, marks every difference
// and then syncs the changes. Catalog-only services and checks are
// deregistered (except those the leader owns).
func (s *Syncer) SyncFull(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := structs.QueryOptions{AllowStale: true}
	var svcs structs.IndexedNodeServices
	if err := s.rpc.RPC(ctx, structs.MethodCatalogNodeServices, &structs.NodeSpecificRequest{Datacenter: s.cfg.Datacenter, Node: s.cfg.NodeName, QueryOptions: q}, &svcs); err != nil {
		return fmt.Errorf("local: read catalog services of %s: %w", s.cfg.NodeName, err)
	}
	var chks structs.IndexedHealthChecks
	if err := s.rpc.RPC(ctx, structs.MethodHealthNodeChecks, &structs.NodeSpecificRequest{Datacenter: s.cfg.Datacenter, Node: s.cfg.NodeName, QueryOptions: q}, &chks); err != nil {
		return fmt.Errorf("local: read catalog checks of %s: %w", s.cfg.NodeName, err)
	}
	remoteSvcs := map[string]*structs.NodeService{}
	s.nodeInSync = false
	if ns := svcs.NodeServices; ns != nil {
		s.nodeInSync = s.sameNode(ns.Node)
		for id, svc := range ns.Services {
			if svc != nil {
				remoteSvcs[id] = svc
			}
		}
	}
	remoteChecks := map[string]*structs.HealthCheck{}
	for _, c := range chks.HealthChecks {
		if c != nil {
			remoteChecks[c.CheckID] = c
		}
	}
	s.state.reconcile(remoteSvcs, remoteChecks)
	return s.syncChangesLocked(ctx)
}

// sameNode reports whether the catalog's node record matches cfg.
func (s *Syncer) sameNode(n *structs.Node) bool {
	return n != nil && n.Node == s.cfg.NodeName && n.ID == s.cfg.NodeID &&
		n.Address == s.cfg.Address &&
		maps.Equal(n.TaggedAddresses, s.cfg.TaggedAddresses) &&
		maps.Equal(n.Meta, s.meta())
}

// SyncChanges pushes the records State marked dirty: deregistrations
// first, then each dirty service with all its checks in one register, then
// the remaining checks, then the node itself if only it differs. It stops
// at the first failed RPC; what was not acknowledged stays dirty.
func (s *Syncer) SyncChanges(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncChangesLocked(ctx)
}

func (s *Syncer) syncChangesLocked(ctx context.Context) error {
	svcs, chks := s.state.syncSnapshot()
	present := map[string]*structs.NodeService{}
	gone := map[string]bool{}
	for _, ss := range svcs {
		if ss.deleted {
			gone[ss.svc.ID] = true
		} else {
			present[ss.svc.ID] = ss.svc
		}
	}

	for _, ss := range svcs {
		if !ss.deleted {
			continue
		}
		if err := s.deregister(ctx, &structs.DeregisterRequest{ServiceID: ss.svc.ID}); err != nil {
			return err
		}
		s.state.forgetService(ss.svc.ID, ss.rev)
	}

	sent := map[string]bool{}
	for _, ss := range svcs {
		if ss.deleted || ss.inSync {
			continue
		}
		var withSvc []checkSnap
		for _, cs := range chks {
			if !cs.deleted && cs.chk.ServiceID == ss.svc.ID {
				withSvc = append(withSvc, cs)
				sent[cs.chk.CheckID] = true
			}
		}
		req := s.registerRequest()
		req.Service = ss.svc
		s.attachChecks(req, withSvc)
		if err := s.register(ctx, req); err != nil {
			return err
		}
		s.state.markServiceSynced(ss.svc.ID, ss.rev, withSvc)
	}

	for _, cs := range chks {
		if !cs.deleted || gone[cs.chk.ServiceID] {
			continue // a deregistered service took its checks with it
		}
		if err := s.deregister(ctx, &structs.DeregisterRequest{CheckID: cs.chk.CheckID}); err != nil {
			return err
		}
		s.state.forgetCheck(cs.chk.CheckID, cs.rev)
	}

	for _, cs := range chks {
		if cs.deleted || cs.inSync || sent[cs.chk.CheckID] {
			continue
		}
		if cs.chk.ServiceID != "" && present[cs.chk.ServiceID] == nil {
			continue // its service is gone; the check goes with it
		}
		req := s.registerRequest()
		s.attachChecks(req, []checkSnap{cs})
		if err := s.register(ctx, req); err != nil {
			return err
		}
		s.state.markCheckSynced(cs.chk.CheckID, cs.rev)
	}

	if !s.nodeInSync {
		if err := s.register(ctx, s.registerRequest()); err != nil {
			return err
		}
	}
	return nil
}

// registerRequest carries the node's own fields; SkipNodeUpdate spares
// the catalog a node rewrite when they already match.
func (s *Syncer) registerRequest() *structs.RegisterRequest {
	return &structs.RegisterRequest{
		Datacenter:      s.cfg.Datacenter,
		ID:              s.cfg.NodeID,
		Node:            s.cfg.NodeName,
		Address:         s.cfg.Address,
		TaggedAddresses: maps.Clone(s.cfg.TaggedAddresses),
		NodeMeta:        maps.Clone(s.meta()),
		SkipNodeUpdate:  s.nodeInSync,
	}
}

// attachChecks adds checks as Consul's agent does: one in Check, more in
// Checks.
func (s *Syncer) attachChecks(req *structs.RegisterRequest, cs []checkSnap) {
	for _, c := range cs {
		c.chk.Node = s.cfg.NodeName
		if len(cs) == 1 {
			req.Check = c.chk
		} else {
			req.Checks = append(req.Checks, c.chk)
		}
	}
}

func (s *Syncer) register(ctx context.Context, req *structs.RegisterRequest) error {
	var out structs.WriteResponse
	if err := s.rpc.RPC(ctx, structs.MethodCatalogRegister, req, &out); err != nil {
		what := "node"
		switch {
		case req.Service != nil:
			what = "service " + req.Service.ID
		case req.Check != nil:
			what = "check " + req.Check.CheckID
		}
		return fmt.Errorf("local: register %s: %w", what, err)
	}
	// A register carries the node's fields, so the node now matches.
	s.nodeInSync = true
	if req.Service != nil {
		s.logger.Info("synced service", zap.String("service", req.Service.ID))
	}
	return nil
}

func (s *Syncer) deregister(ctx context.Context, req *structs.DeregisterRequest) error {
	req.Datacenter, req.Node = s.cfg.Datacenter, s.cfg.NodeName
	var out structs.WriteResponse
	if err := s.rpc.RPC(ctx, structs.MethodCatalogDeregister, req, &out); err != nil {
		return fmt.Errorf("local: deregister service %q check %q: %w", req.ServiceID, req.CheckID, err)
	}
	s.logger.Info("deregistered from catalog", zap.String("service", req.ServiceID), zap.String("check", req.CheckID))
	return nil
}
