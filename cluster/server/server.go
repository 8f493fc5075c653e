package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnd/cairn/cluster/fsm"
	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/logging"
	"github.com/cairnd/cairn/cluster/raftstore"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/stream"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

const (
	// raftApplyTimeout bounds how long a write waits to enter the Raft
	// pipeline; commit itself is awaited without a further bound.
	raftApplyTimeout = 30 * time.Second
	// maxAppendEntries is the Raft batch size; large batches amortise the
	// synced Pebble write across many concurrent writers.
	maxAppendEntries = 1024
	// raftLogCache is how many recent log entries the leader keeps in
	// memory (raft.LogCache, Consul's size): replication reads just-
	// appended entries back for each follower, and reading them from
	// Pebble was ~6% of a busy leader's CPU (issue 19).
	raftLogCache = 512
	// leaderWait is how long a request waits for a leader to appear before
	// failing with ErrNoLeader (Consul's RPCHoldTimeout is 7s).
	leaderWait = 7 * time.Second
	// reconcileInterval is the leader's periodic full membership sweep.
	reconcileInterval = 60 * time.Second
	// retryJoinInterval is Consul's retry_interval default.
	retryJoinInterval = 30 * time.Second
)

// Server is one running server agent core.
type Server struct {
	cfg    Config
	log    *zap.Logger
	ln     net.Listener
	rpcSrv *rpc.Server
	rates  *rateGate // limits.request_limits on the server port; nil when off
	pool   *connPool

	raft      *raft.Raft
	store     *raftstore.Store
	transport *raft.NetworkTransport
	fsm       *fsm.FSM
	pub       *stream.Publisher
	notifyCh  chan bool

	lan *gossip.Pool
	wan *gossip.Pool

	endpoints map[string]endpoint
	// rules caches parsed ACL policy rules (acl.go).
	rules rulesCache

	readyForReads atomic.Bool
	// epoch ends at each change of raft's known leader (watchLeader), so
	// calls forwarded to a leader stop waiting as soon as it is replaced.
	epoch       atomic.Pointer[leaderEpoch]
	observer    *raft.Observer
	autopilot   autopilot
	reconcileCh chan serf.Member
	sessionTTL  *sessionTTLs
	// sessionsLapsed counts sessions the leader destroyed on TTL lapse.
	sessionsLapsed prometheus.Counter
	bootstrapped   atomic.Bool

	applies prometheus.CounterFunc
	// nudge tells followers of commits once writes pause (commitnudge.go).
	nudge commitNudge

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New opens the stores, starts Raft, the RPC listener and serf, and
// returns a running server. Close stops everything.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		notifyCh:    make(chan bool, 8),
		reconcileCh: make(chan serf.Member, 256),
		sessionTTL:  newSessionTTLs(),
		nudge:       commitNudge{ch: make(chan struct{}, 1)},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.RPCPort)))
	if err != nil {
		return nil, fmt.Errorf("server: listen on server port: %w", err)
	}
	s.ln = ln
	adv := s.advertiseRPC()
	s.rpcSrv = rpc.NewServer(s.log.Named("rpc"), cfg.Registry, rpcLimits(cfg))
	s.rpcSrv.SetTLS(cfg.TLS)
	s.pool = newConnPool(s.log.Named("pool"))
	s.pool.tls = cfg.TLS
	s.rates = newRateGate(cfg.RequestLimits, cfg.Registry, s.log.Named("rpc"), s.isRaftPeerIP)
	s.registerEndpoints()
	pub, err := stream.NewPublisher(stream.Config{
		Datacenter: cfg.Datacenter,
		State:      func() stream.State { return s.fsm.State() },
		Logger:     s.log.Named("stream"),
		Registry:   cfg.Registry,
	})
	if err != nil {
		return nil, err
	}
	s.pub = pub
	// With ACLs on, subscriptions are not served: the publisher pushes
	// results unfiltered, so a client agent whose token may not read a
	// service would hear of it. Clients then see "unknown method" and keep
	// their entries fresh with the index watch and its ACL-filtered reads.
	if !cfg.ACL.Enabled {
		s.rpcSrv.HandleStream(stream.MethodSubscribe, pub.Serve)
	}

	if err := s.setupRaft(adv); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.rpcSrv.Serve(s.ctx, ln); err != nil && !s.closed.Load() {
			s.log.Error("rpc listener stopped", zap.Error(err))
		}
	}()
	if err := s.setupSerf(); err != nil {
		return nil, err
	}
	s.applies = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "cairn_raft_applies_total",
		Help: "Raft log entries applied to this server's state machine.",
	}, func() float64 { return float64(s.fsm.Applied()) })
	if err := cfg.Registry.Register(s.applies); err != nil {
		s.log.Warn("metric registration", zap.Error(err))
	}
	s.registerTombstoneMetrics()

	s.wg.Add(1)
	go s.nudgeFollowers()
	s.wg.Add(1)
	go s.monitorLeadership()
	s.startAutopilot()
	ok = true
	return s, nil
}

func (s *Server) advertiseIP() string {
	if s.cfg.AdvertiseAddr != "" {
		return s.cfg.AdvertiseAddr
	}
	if ip := net.ParseIP(s.cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		return s.cfg.BindAddr
	}
	return "127.0.0.1"
}

// advertiseRPC is host:port others use to reach this server's RPC port.
func (s *Server) advertiseRPC() *net.TCPAddr {
	port := s.ln.Addr().(*net.TCPAddr).Port
	return &net.TCPAddr{IP: net.ParseIP(s.advertiseIP()), Port: port}
}

// RPCAddr is the address clients and peers dial.
func (s *Server) RPCAddr() string { return s.advertiseRPC().String() }

func (s *Server) setupRaft(adv *net.TCPAddr) error {
	var (
		snaps raft.SnapshotStore
		err   error
	)
	opts := raftstore.Options{Logger: s.log.Named("raftstore"), NoSync: s.cfg.RaftNoSync}
	dir := ""
	if s.cfg.InMemory {
		opts.FS = vfs.NewMem()
		snaps = raftstore.NewMemSnapshotStore()
	} else {
		dir = filepath.Join(s.cfg.DataDir, "raft")
		snaps, err = raftstore.NewSnapshotStore(filepath.Join(s.cfg.DataDir, "snapshots"), s.log.Named("snapshots"))
		if err != nil {
			return fmt.Errorf("server: snapshots in %s: %w", s.cfg.DataDir, err)
		}
	}
	st, err := raftstore.Open(dir, opts)
	if err != nil {
		return fmt.Errorf("server: data dir %s: %w", s.cfg.DataDir, err)
	}
	s.store = st

	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.rpcSrv.RaftLayer(adv),
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logging.HCLog(s.log.Named("raft-net"), "raft-net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeName)
	rc.Logger = logging.HCLog(s.log.Named("raft"), "raft")
	rc.NotifyCh = s.notifyCh
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = maxAppendEntries
	rc.SnapshotThreshold = s.cfg.RaftSnapshotThreshold
	rc.SnapshotInterval = s.cfg.RaftSnapshotInterval
	rc.TrailingLogs = s.cfg.RaftTrailingLogs
	if s.cfg.RaftCommitTimeout > 0 {
		rc.CommitTimeout = s.cfg.RaftCommitTimeout
	}
	if s.cfg.FastGossip {
		rc.HeartbeatTimeout = 500 * time.Millisecond
		rc.ElectionTimeout = 500 * time.Millisecond
		rc.LeaderLeaseTimeout = 250 * time.Millisecond
	}
	s.fsm = fsm.New(s.log.Named("fsm"))
	s.fsm.SetPublisher(s.pub)
	if !s.cfg.InMemory {
		if err := s.recoverFromPeersFile(dir, rc, st, st, snaps, s.transport); err != nil {
			return err
		}
	}

	has, err := raft.HasExistingState(st, st, snaps)
	if err != nil {
		return fmt.Errorf("server: read raft state in %s: %w", s.cfg.DataDir, err)
	}
	if has {
		s.bootstrapped.Store(true)
	}
	s.epoch.Store(newLeaderEpoch())
	logs, err := raft.NewLogCache(raftLogCache, st)
	if err != nil {
		return fmt.Errorf("server: raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, st, snaps, s.transport)
	if err != nil {
		return fmt.Errorf("server: start raft: %w", err)
	}
	s.raft = r
	// Buffered and non-blocking: raft never waits for us, and a full
	// buffer drops only observations that queued ones already cover.
	obs := make(chan raft.Observation, 16)
	s.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(s.observer)
	s.wg.Add(1)
	go s.watchLeader(obs)
	if !has && s.cfg.BootstrapExpect == 1 {
		s.bootstrap([]raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(adv.String()), Suffrage: raft.Voter}})
	}
	return nil
}

func (s *Server) bootstrap(servers []raft.Server) {
	if !s.bootstrapped.CompareAndSwap(false, true) {
		return
	}
	s.log.Info("bootstrapping raft cluster", zap.Int("servers", len(servers)))
	if err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		s.log.Error("bootstrap failed", zap.Error(err))
	}
}

func (s *Server) tags(wan bool) map[string]string {
	t := map[string]string{
		gossip.TagRole:  gossip.RoleServer,
		gossip.TagDC:    s.cfg.Datacenter,
		gossip.TagPort:  strconv.Itoa(s.advertiseRPC().Port),
		gossip.TagID:    s.cfg.NodeID,
		gossip.TagBuild: s.cfg.Build,
		gossip.TagVsn:   "2",
	}
	if s.cfg.BootstrapExpect > 1 && !wan {
		t[gossip.TagExpect] = strconv.Itoa(s.cfg.BootstrapExpect)
	}
	if !wan && s.wan != nil {
		// The bound port, not the configured one, which may be 0.
		t[gossip.TagWANJoinPort] = strconv.Itoa(int(s.wan.LocalMember().Port))
	}
	return t
}

// setupSerf starts the WAN pool (when enabled) before the LAN pool, so
// the LAN tags carry the WAN port actually bound.
func (s *Server) setupSerf() error {
	wanPort := s.cfg.SerfWANPort
	if wanPort < 0 && len(s.cfg.RetryJoinWAN) > 0 {
		wanPort = 0 // joining other datacenters needs a WAN pool
	}
	if wanPort >= 0 {
		wan, err := gossip.New(gossip.Config{
			NodeName:         s.cfg.NodeName + "." + s.cfg.Datacenter,
			BindAddr:         s.cfg.BindAddr,
			BindPort:         wanPort,
			AdvertiseAddr:    cmp.Or(s.cfg.AdvertiseAddrWAN, s.advertiseIP()),
			Tags:             s.tags(true),
			WAN:              true,
			EncryptKey:       s.cfg.EncryptKey,
			ReconnectTimeout: s.cfg.ReconnectTimeout,
			Fast:             s.cfg.FastGossip,
		}, s.log.Named("serf.wan"))
		if err != nil {
			return err
		}
		s.wan = wan
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.ctx.Done():
					return
				case <-wan.Events():
				}
			}
		}()
	}
	lan, err := gossip.New(gossip.Config{
		NodeName:         s.cfg.NodeName,
		BindAddr:         s.cfg.BindAddr,
		BindPort:         s.cfg.SerfLANPort,
		AdvertiseAddr:    s.advertiseIP(),
		Tags:             s.tags(false),
		EncryptKey:       s.cfg.EncryptKey,
		ReconnectTimeout: s.cfg.ReconnectTimeout,
		Fast:             s.cfg.FastGossip,
	}, s.log.Named("serf.lan"))
	if err != nil {
		return err
	}
	s.lan = lan
	s.wg.Add(1)
	go s.lanEventLoop()
	s.startRetryJoin(s.lan, s.cfg.RetryJoin)
	if s.wan != nil {
		s.startRetryJoin(s.wan, s.cfg.RetryJoinWAN)
	}
	return nil
}

func (s *Server) startRetryJoin(p *gossip.Pool, addrs []string) {
	if len(addrs) == 0 {
		return
	}
	interval := retryJoinInterval
	if s.cfg.FastGossip {
		interval = time.Second
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = p.RetryJoin(s.ctx.Done(), addrs, interval, 0)
	}()
}

// LAN is the server's LAN pool (the agent lists members through it).
func (s *Server) LAN() *gossip.Pool { return s.lan }

// WAN is the WAN pool, nil when disabled.
func (s *Server) WAN() *gossip.Pool { return s.wan }

// State is the current state store (it changes on snapshot restore).
func (s *Server) State() *state.Store { return s.fsm.State() }

// Raft exposes the raft instance (stats, tests).
func (s *Server) Raft() *raft.Raft { return s.raft }

// IsLeader reports whether this server is the Raft leader.
func (s *Server) IsLeader() bool { return s.raft != nil && s.raft.State() == raft.Leader }

// Leader returns the leader's RPC address, or "".
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// Leave leaves gracefully: a server first removes itself from the Raft
// configuration (through the leader), then leaves the LAN/WAN pools.
func (s *Server) Leave(ctx context.Context) error {
	// A leader removes itself from the Raft configuration; a follower is
	// removed by the leader when serf reports it "left" (waited for below),
	// so the remaining servers' quorum arithmetic is right afterwards.
	if s.raft != nil && s.IsLeader() {
		if err := s.raft.RemoveServer(raft.ServerID(s.cfg.NodeName), 0, 0).Error(); err != nil {
			s.log.Warn("remove self from raft", zap.Error(err))
		}
	}
	var errs []error
	if s.wan != nil {
		errs = append(errs, s.wan.Leave())
	}
	if s.lan != nil {
		errs = append(errs, s.lan.Leave())
	}
	if s.raft != nil && !s.IsLeader() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if !s.inRaftConfig() {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) inRaftConfig() bool {
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(s.cfg.NodeName) {
			return true
		}
	}
	return false
}

// Close stops everything without leaving (peers see this server fail).
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	var errs []error
	if s.lan != nil {
		errs = append(errs, s.lan.Shutdown())
	}
	if s.wan != nil {
		errs = append(errs, s.wan.Shutdown())
	}
	if s.raft != nil {
		if s.observer != nil {
			s.raft.DeregisterObserver(s.observer)
		}
		errs = append(errs, s.raft.Shutdown().Error())
	}
	if s.rpcSrv != nil {
		errs = append(errs, s.rpcSrv.Close())
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.transport != nil {
		s.transport.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	s.wg.Wait()
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}
