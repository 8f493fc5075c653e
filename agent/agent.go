package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnd/cairn/agent/config"
	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/agent/local"
	"github.com/cairnd/cairn/agent/sdnotify"
	"github.com/cairnd/cairn/cache"
	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/cluster/stream"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/tlsconf"
	"github.com/cairnd/cairn/forwarder"
	"github.com/cairnd/cairn/resolver"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

const (
	// shutdownGrace bounds a graceful HTTP shutdown.
	shutdownGrace = 5 * time.Second
	// httpReadHeaderTimeout stops slow-loris clients on the API port.
	httpReadHeaderTimeout = 10 * time.Second
)

// fastGossip reports CAIRN_FAST_GOSSIP=1: tests shorten serf and Raft
// timings with it (see doc.go); it is deliberately not a config key.
func fastGossip() bool { return os.Getenv("CAIRN_FAST_GOSSIP") == "1" }

// Options are what the CLI hands to Run.
type Options struct {
	ConfigDirs []string
	// Apply sets the flags the operator gave; it runs after config files
	// on every load (start and reload), so flags always win.
	Apply func(*config.Config)
	// ReadyFile, when set, is where Run writes the bound addresses (JSON,
	// see Addrs) once every listener is up, and removes them at exit.
	ReadyFile string
}

// Run loads the configuration, runs the agent until ctx ends (or the
// agent is asked to leave), handling SIGHUP as reload.
func Run(ctx context.Context, opts Options) error {
	cfg, err := config.Load(opts.ConfigDirs, opts.Apply)
	if err != nil {
		return err
	}
	logger, mon, err := NewLogger(cfg.LogLevel, cfg.LogJSON)
	if err != nil {
		return err
	}
	defer logger.Sync()
	logConfigWarnings(logger, cfg)
	a, err := New(cfg, opts, logger, mon)
	if err != nil {
		logger.Error("agent failed to start", zap.Error(err))
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		return err
	}
	if opts.ReadyFile != "" {
		if err := writeReadyFile(opts.ReadyFile, a.Addrs()); err != nil {
			a.Close()
			return err
		}
		defer os.Remove(opts.ReadyFile)
	}
	sdnotify.Ready()
	logger.Info("agent running",
		zap.String("node", cfg.NodeName), zap.String("datacenter", cfg.Datacenter),
		zap.Bool("server", cfg.Server), zap.String("version", Version))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			sdnotify.Reloading()
			if err := a.Reload(ctx); err != nil {
				logger.Error("reload failed, keeping the running configuration", zap.Error(err))
			}
			sdnotify.Ready()
		case <-a.leaveCh:
			logger.Info("agent left the cluster, shutting down")
			sdnotify.Stopping()
			return a.Close()
		case <-ctx.Done():
			logger.Info("shutting down")
			sdnotify.Stopping()
			return a.Close()
		}
	}
}

// Agent is one running agent (client or server).
type Agent struct {
	opts Options
	log  *zap.Logger
	mon  *Monitor
	reg  *prometheus.Registry

	// cfg is what is fixed for the process's life (node, datacenter,
	// addresses, ports, data dir...): set at New, never written again, so
	// read without locks. Its reloadable fields are zero: they live in live.
	cfg *config.Config
	// live holds the reloadable settings. Reload swaps it whole and pushes
	// the change to the parts that copied a setting (logger level, the
	// syncer's node meta); readers Load it once per use.
	live atomic.Pointer[config.Reloadable]
	// reloadMu serialises reloads (SIGHUP and PUT /v1/agent/reload).
	reloadMu sync.Mutex
	// addrs are the bound listener addresses, set by Start before the
	// HTTP API serves (see Addrs).
	addrs Addrs

	tls *tlsconf.Configurator // nil without TLS settings; reloads in place
	// httpsTLS is the HTTPS listener's material (tls.https over
	// tls.defaults); nil unless ports.https is on.
	httpsTLS *tlsconf.Configurator

	srv *server.Server // servers only
	lan *gossip.Pool   // clients only (servers use srv.LAN())
	fwd *forwarder.Forwarder
	acl *aclResolver // client agents' token cache (acl.go)

	dns     *resolver.Server
	cache   *cache.Catalog // clients only
	httpLn  net.Listener
	httpsLn net.Listener // TLS inside; nil unless ports.https is on
	httpSrv *http.Server

	local  *local.State
	syncer *local.Syncer
	checks *checkSet
	events *eventRing

	leaveCh   chan struct{}
	leaveOnce sync.Once

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// New builds the agent's parts; nothing listens until Start.
func New(cfg *config.Config, opts Options, logger *zap.Logger, mon *Monitor) (*Agent, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &Agent{
		opts:    opts,
		log:     logger,
		mon:     mon,
		reg:     reg,
		cfg:     cfg.Fixed(),
		local:   local.NewState(),
		events:  newEventRing(),
		leaveCh: make(chan struct{}),
	}
	a.live.Store(cfg.Reloadable())
	id, err := resolveNodeID(a.cfg)
	if err != nil {
		return nil, err
	}
	a.cfg.NodeID = id
	tls, err := newTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.tls = tls
	if cfg.Ports.HTTPS != config.PortDisabled {
		if a.httpsTLS, err = tlsconf.New(cfg.HTTPSConfig()); err != nil {
			return nil, fmt.Errorf("agent: https: %w", err)
		}
	}
	a.checks = newCheckSet(a)
	a.acl = &aclResolver{cfg: cfg.ACL, rpc: a.RPC, log: logger.Named("acl")}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Start brings up cluster membership, then DNS and HTTP. It returns once
// every listener is bound and the HTTP API serves (the moment systemd is
// told READY); Addrs then reports where.
func (a *Agent) Start(ctx context.Context) error {
	if a.cfg.Server {
		if err := a.startServer(); err != nil {
			return err
		}
	} else if err := a.startClient(); err != nil {
		return err
	}
	a.startSync()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.syncCoordinates()
	}()
	if a.lan != nil { // a client: gossip feeds the forwarder and the syncer
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.clientEventLoop()
		}()
	}
	if err := a.loadDefinitions(a.live.Load()); err != nil {
		return err
	}
	if a.cfg.Ports.DNS != config.PortDisabled {
		if err := a.startDNS(ctx); err != nil {
			return err
		}
	}
	if err := a.listenHTTP(); err != nil {
		return err
	}
	a.addrs = a.boundAddrs()
	a.log.Info("agent listening", zap.String("dns", a.addrs.DNS), zap.String("http", a.addrs.HTTP), zap.String("https", a.addrs.HTTPS),
		zap.String("server", a.addrs.Server), zap.String("serf_lan", a.addrs.SerfLAN), zap.String("serf_wan", a.addrs.SerfWAN))
	a.serveHTTP()
	if a.cache != nil {
		// A client agent is up: the binary's start-up and server-only
		// code it touched need not stay mapped (see resolver.TrimImage).
		resolver.TrimImage()
	}
	return nil
}

func (a *Agent) startServer() error {
	sc, err := a.cfg.ServerConfig()
	if err != nil {
		return err
	}
	sc.FastGossip = sc.FastGossip || fastGossip()
	sc.Build = Version
	sc.Logger = a.log.Named("server")
	sc.Registry = a.reg
	sc.UserEvent = a.onUserEvent
	sc.TLS = a.portTLS()
	sc.ACL = server.ACLConfig{Enabled: a.cfg.ACL.Enabled, DefaultAllow: a.cfg.ACL.DefaultPolicy != config.ACLPolicyDeny,
		InitialManagement: a.cfg.ACL.Tokens.InitialManagement}
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	a.srv = srv
	return nil
}

// loadDefinitions registers the services and checks of the config files.
func (a *Agent) loadDefinitions(live *config.Reloadable) error {
	for i := range live.Services {
		if err := a.addService(&live.Services[i], true); err != nil {
			return fmt.Errorf("agent: service %q from config: %w", live.Services[i].Name, err)
		}
	}
	for i := range live.Checks {
		if err := a.addCheck(&live.Checks[i], true); err != nil {
			return fmt.Errorf("agent: check %q from config: %w", live.Checks[i].Name, err)
		}
	}
	return nil
}

func (a *Agent) startClient() error {
	cfg := a.cfg
	key, err := cfg.GossipKey()
	if err != nil {
		return err
	}
	pool, err := gossip.New(gossip.Config{
		NodeName:      cfg.NodeName,
		BindAddr:      cfg.ClusterBindAddr(),
		BindPort:      cfg.Ports.SerfLAN,
		AdvertiseAddr: cfg.AdvertiseAddr,
		Tags: map[string]string{
			gossip.TagRole: gossip.RoleClient, gossip.TagDC: cfg.Datacenter,
			gossip.TagID: cfg.NodeID, gossip.TagBuild: Version, gossip.TagVsn: "2",
		},
		EncryptKey:       key,
		ReconnectTimeout: cfg.ReconnectTimeout.Duration(),
		Fast:             fastGossip(),
	}, a.log.Named("serf.lan"))
	if err != nil {
		return err
	}
	a.lan = pool
	fc := forwarder.DefaultConfig()
	fc.Datacenter = cfg.Datacenter
	fc.TLS = a.portTLS()
	a.fwd = forwarder.New(fc, a.log.Named("forwarder"), a.reg)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.fwd.Run(a.ctx)
	}()
	go func() {
		defer a.wg.Done()
		interval := 30 * time.Second
		if fastGossip() {
			interval = time.Second
		}
		_ = pool.RetryJoin(a.ctx.Done(), cfg.RetryJoin, interval, 0)
	}()
	return nil
}

// clientEventLoop keeps the forwarder's server list in step with gossip,
// asks the syncer for a full sync when a server joins, and records user
// events. It starts after the syncer exists.
func (a *Agent) clientEventLoop() {
	a.refreshServers()
	for {
		select {
		case <-a.ctx.Done():
			return
		case e := <-a.lan.Events():
			switch ev := e.(type) {
			case serf.MemberEvent:
				a.refreshServers()
				if ev.Type == serf.EventMemberJoin {
					for _, m := range ev.Members {
						if m.Tags[gossip.TagRole] == gossip.RoleServer {
							a.syncer.TriggerFull()
							break
						}
					}
				}
			case serf.UserEvent:
				a.onUserEvent(ev.Name, ev.Payload, uint64(ev.LTime))
			}
		}
	}
}

func (a *Agent) refreshServers() {
	var addrs []string
	for _, m := range a.lan.Members() {
		if m.Status != serf.StatusAlive {
			continue
		}
		if dc, addr, ok := gossip.ServerAddr(m); ok && dc == a.cfg.Datacenter {
			addrs = append(addrs, addr)
		}
	}
	a.fwd.SetServers(addrs)
}

func (a *Agent) lanPool() *gossip.Pool {
	if a.srv != nil {
		return a.srv.LAN()
	}
	return a.lan
}

func (a *Agent) advertise() string {
	if a.cfg.AdvertiseAddr != "" {
		return a.cfg.AdvertiseAddr
	}
	if p := a.lanPool(); p != nil {
		return p.LocalMember().Addr.String()
	}
	return "127.0.0.1"
}

// aeInterval is the periodic full anti-entropy sync period. Tests shorten
// it with CAIRN_AE_INTERVAL (a Go duration); 0 means local's default (1m).
func aeInterval() time.Duration {
	d, err := time.ParseDuration(os.Getenv("CAIRN_AE_INTERVAL"))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

func (a *Agent) startSync() {
	cfg := a.cfg
	a.syncer = local.NewSyncer(local.SyncConfig{
		Interval:        aeInterval(),
		Datacenter:      cfg.Datacenter,
		NodeName:        cfg.NodeName,
		NodeID:          cfg.NodeID,
		Address:         a.advertise(),
		TaggedAddresses: taggedAddresses(a.advertise(), a.cfg.AdvertiseAddrWAN),
		NodeMeta:        a.live.Load().NodeMeta,
		ClusterSize: func() int {
			if p := a.lanPool(); p != nil {
				return len(p.Members())
			}
			return 1
		},
	}, a.local, agentTokenRPC{a}, a.log.Named("anti-entropy"))
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.syncer.Run(a.ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.local.RunReaper(a.ctx, local.DefaultReapInterval, func(id string) {
			a.log.Info("deregistered service whose check stayed critical", zap.String("service", id))
			a.checks.removeForService(id)
		})
	}()
}

// RPC runs method in-process on servers, through the forwarder on clients.
func (a *Agent) RPC(ctx context.Context, method string, args, reply any) error {
	if a.cfg.ACL.Enabled {
		ctx = a.withDefaultToken(ctx)
	}
	if a.srv != nil {
		return a.srv.RPC(ctx, method, args, reply)
	}
	return a.fwd.Call(ctx, method, args, reply, !structs.IsWriteMethod(method))
}

func (a *Agent) startDNS(ctx context.Context) error {
	cfg := a.cfg
	rc := cfg.ResolverConfig()
	rc.LimitTCP = a.limitDNSTCP
	d := cfg.DNSConfig
	var cat resolver.Catalog
	if a.srv != nil {
		src := &cache.Source{Datacenter: cfg.Datacenter, RPC: a.RPC, AllowStale: d.AllowStale, NodeName: cfg.NodeName,
			Local: func() cache.LocalState { return a.srv.State() }}
		if cfg.ACL.Enabled {
			// Through the in-process RPC, so answers are filtered by the
			// default token as on client agents (Consul's DNS rule).
			src.Local = nil
		}
		cat = src
	} else {
		// The cache's hot keys are pushed over one subscription stream
		// on the forwarder's connection (cluster/stream).
		var cc2 *cache.Catalog
		subs, err := a.fwd.NewSubscriptions(forwarder.SubscriptionsConfig{
			Datacenter: cfg.Datacenter,
			Deliver:    func(ev stream.Event) { cc2.Deliver(ev) },
			Down:       func(err error) { cc2.Down(err) },
			Up:         func(server string) { cc2.Up(server) },
			// An older server (rolling upgrade): the index watch takes over.
			Unsupported: func(err error) { cc2.Unsupported(err) },
		})
		if err != nil {
			return err
		}
		ccfg := cfg.CacheConfig()
		ccfg.Subscriber = subs
		// Fill bursts' garbage goes back to the OS once they end
		// (cache/memory.go), and so do the mappings of the code only
		// the fills ran (decoding, subscribing): measured on a client
		// holding 10,000 names, file-backed RSS 14.0 → 11.3 MB after
		// the burst, 12.6 MB a minute later (steady gossip and GC).
		ccfg.ReleaseMemory = func() {
			debug.FreeOSMemory()
			resolver.TrimImage()
		}
		cc2, err = cache.New(ccfg, a.RPC, a.log.Named("cache"), a.reg)
		if err != nil {
			return err
		}
		a.cache, cat = cc2, cc2
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			_ = subs.Run(a.ctx)
		}()
	}
	srv, err := resolver.New(rc, cat, a.log.Named("dns"), a.reg)
	if err != nil {
		return err
	}
	if a.cache != nil {
		resolver.TuneClientRuntime() // GC settings of client agents: see resolver/runtime.go
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("agent: dns on %s: %w", rc.Addr, err)
	}
	a.dns = srv
	return nil
}

// listenHTTP binds the API's plain and TLS ports, each unless disabled.
func (a *Agent) listenHTTP() error {
	if a.cfg.Ports.HTTP != config.PortDisabled {
		addr := a.cfg.HTTPAddr()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("agent: http on %s: %w", addr, err)
		}
		a.httpLn = a.limitHTTP(ln, "http")
	}
	if a.httpsTLS != nil {
		addr := a.cfg.HTTPSAddr()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("agent: https on %s: %w", addr, err)
		}
		// The per-client caps count TCP connections, before any handshake.
		a.httpsLn = tls.NewListener(a.limitHTTP(ln, "https"), a.httpsTLS.IncomingTLS())
	}
	return nil
}

// serveHTTP serves the API on the listeners of listenHTTP, if any: one
// http.Server, so both ports share handlers, timeouts and shutdown.
func (a *Agent) serveHTTP() {
	lns := make([]net.Listener, 0, 2)
	for _, ln := range []net.Listener{a.httpLn, a.httpsLn} {
		if ln != nil {
			lns = append(lns, ln)
		}
	}
	if len(lns) == 0 {
		return
	}
	a.httpSrv = &http.Server{
		Handler:           a.limitRequests(withPprof(a.withUI(agenthttp.New(a, a.log.Named("http"))))),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	for _, ln := range lns {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", zap.String("addr", ln.Addr().String()), zap.Error(err))
			}
		}()
	}
}

// withPprof serves net/http/pprof under /debug/pprof/ next to api when
// CAIRN_PPROF=1 (benchmarks profile a server with it); otherwise api alone.
// Heap-profile sampling is on only then too (cmd/cairn's main).
func withPprof(api http.Handler) http.Handler {
	if os.Getenv("CAIRN_PPROF") != "1" {
		return api
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	return mux
}

// Close stops everything (without leaving the cluster) and waits.
func (a *Agent) Close() error {
	var errs []error
	a.closed.Do(func() {
		if a.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			a.httpSrv.Shutdown(ctx)
			cancel()
		} else {
			for _, ln := range []net.Listener{a.httpLn, a.httpsLn} {
				if ln != nil {
					ln.Close() // Start failed between listen and serve
				}
			}
		}
		if a.dns != nil {
			errs = append(errs, a.dns.Close())
		}
		if a.cache != nil {
			errs = append(errs, a.cache.Close())
		}
		a.checks.stopAll()
		a.cancel()
		if a.fwd != nil {
			errs = append(errs, a.fwd.Close())
		}
		if a.lan != nil {
			errs = append(errs, a.lan.Shutdown())
		}
		if a.srv != nil {
			errs = append(errs, a.srv.Close())
		}
		a.wg.Wait()
	})
	return errors.Join(errs...)
}
