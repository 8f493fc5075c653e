package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cairnd/cairn/agent/config"
	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/agent/local"
	"github.com/cairnd/cairn/agent/sdnotify"
	"github.com/cairnd/cairn/cache"
	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/cluster/structs"
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
	a, err := New(cfg, opts, logger, mon)
	if err != nil {
		logger.Error("agent failed to start", zap.Error(err))
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		return err
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

	mu  sync.RWMutex
	cfg *config.Config

	srv *server.Server // servers only
	lan *gossip.Pool   // clients only (servers use srv.LAN())
	fwd *forwarder.Forwarder

	dns     *resolver.Server
	cache   *cache.Catalog // clients only
	front   *cache.Front   // clients only: the DNS port's UDP side
	httpLn  net.Listener
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
		cfg:     cfg,
		local:   local.NewState(),
		events:  newEventRing(),
		leaveCh: make(chan struct{}),
	}
	a.checks = newCheckSet(a)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

func (a *Agent) config() *config.Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

func (a *Agent) encryptKey() ([]byte, error) {
	if a.cfg.Encrypt == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(a.cfg.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("agent: encrypt key: %w", err)
	}
	return k, nil
}

// Start brings up cluster membership, then DNS and HTTP. It returns once
// DNS and HTTP are listening (the moment systemd is told READY).
func (a *Agent) Start(ctx context.Context) error {
	cfg := a.cfg
	key, err := a.encryptKey()
	if err != nil {
		return err
	}
	bind := cfg.BindAddr
	if cfg.Dev {
		bind = "127.0.0.1"
	}
	if cfg.Server {
		sc := server.DefaultConfig()
		sc.NodeName = cfg.NodeName
		sc.NodeID = cfg.NodeID
		sc.Datacenter = cfg.Datacenter
		sc.DataDir = cfg.DataDir
		sc.InMemory = cfg.Dev
		sc.BootstrapExpect = cfg.BootstrapExpect
		if sc.BootstrapExpect == 0 {
			sc.BootstrapExpect = 1
		}
		sc.BindAddr = bind
		sc.AdvertiseAddr = cfg.AdvertiseAddr
		sc.RPCPort = cfg.Ports.Server
		sc.SerfLANPort = cfg.Ports.SerfLAN
		sc.SerfWANPort = cfg.Ports.SerfWAN
		if sc.SerfWANPort < 0 {
			sc.SerfWANPort = 0
		}
		sc.RetryJoin = cfg.RetryJoin
		sc.RetryJoinWAN = cfg.RetryJoinWAN
		sc.EncryptKey = key
		sc.ReconnectTimeout = cfg.ReconnectTimeout.Duration()
		sc.FastGossip = cfg.Dev || fastGossip()
		sc.Build = Version
		sc.Logger = a.log.Named("server")
		sc.Registry = a.reg
		sc.UserEvent = a.onUserEvent
		sc.Autopilot = cfg.Autopilot.ServerConfig()
		srv, err := server.New(sc)
		if err != nil {
			return err
		}
		a.srv = srv
	} else {
		if err := a.startClient(bind, key); err != nil {
			return err
		}
	}

	a.startSync()

	// Local services and checks from the config files.
	for i := range cfg.Services {
		if err := a.addService(&cfg.Services[i], true); err != nil {
			return fmt.Errorf("agent: service %q from config: %w", cfg.Services[i].Name, err)
		}
	}
	for i := range cfg.Checks {
		if err := a.addCheck(&cfg.Checks[i], true); err != nil {
			return fmt.Errorf("agent: check %q from config: %w", cfg.Checks[i].Name, err)
		}
	}

	if cfg.Ports.DNS > 0 {
		if err := a.startDNS(ctx); err != nil {
			return err
		}
	}
	if cfg.Ports.HTTP > 0 {
		if err := a.startHTTP(); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) startClient(bind string, key []byte) error {
	cfg := a.cfg
	pool, err := gossip.New(gossip.Config{
		NodeName:      cfg.NodeName,
		BindAddr:      bind,
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
	a.fwd = forwarder.New(fc, a.log.Named("forwarder"), a.reg)
	a.wg.Add(3)
	go func() {
		defer a.wg.Done()
		a.fwd.Run(a.ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.clientEventLoop()
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

// clientEventLoop keeps the forwarder's server list in step with gossip
// and records user events.
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
				if a.syncer != nil && ev.Type == serf.EventMemberJoin {
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
		Interval:   aeInterval(),
		Datacenter: cfg.Datacenter,
		NodeName:   cfg.NodeName,
		NodeID:     cfg.NodeID,
		Address:    a.advertise(),
		NodeMeta:   cfg.NodeMeta,
		ClusterSize: func() int {
			if p := a.lanPool(); p != nil {
				return len(p.Members())
			}
			return 1
		},
	}, a.local, a, a.log.Named("anti-entropy"))
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
	if a.srv != nil {
		return a.srv.RPC(ctx, method, args, reply)
	}
	return a.fwd.Call(ctx, method, args, reply, !structs.IsWriteMethod(method))
}

func (a *Agent) startDNS(ctx context.Context) error {
	cfg := a.cfg
	rc := resolver.DefaultConfig()
	rc.Addr = net.JoinHostPort(cfg.ClientAddr, strconv.Itoa(cfg.Ports.DNS))
	rc.Domain = cfg.Domain
	rc.AltDomain = cfg.AltDomain
	rc.Datacenter = cfg.Datacenter
	rc.NodeName = cfg.NodeName
	rc.Recursors = cfg.Recursors
	d := cfg.DNSConfig
	rc.RecursorTimeout = d.RecursorTimeout.Duration()
	rc.AllowStale = d.AllowStale
	rc.MaxStale = d.MaxStale.Duration()
	rc.NodeTTL = d.NodeTTL.Duration()
	if len(d.ServiceTTL) > 0 {
		rc.ServiceTTL = map[string]time.Duration{}
		for k, v := range d.ServiceTTL {
			rc.ServiceTTL[k] = v.Duration()
		}
	}
	rc.OnlyPassing = d.OnlyPassing
	rc.EnableTruncate = d.EnableTruncate
	rc.UDPAnswerLimit = d.UDPAnswerLimit
	rc.ARecordLimit = d.ARecordLimit
	rc.DisableCompression = d.DisableCompression
	rc.SOA = resolver.SOAConfig{Refresh: d.SOA.Refresh, Retry: d.SOA.Retry, Expire: d.SOA.Expire, MinTTL: d.SOA.MinTTL}
	var cat resolver.Catalog
	if a.srv != nil {
		cat = &dnsCatalog{dc: cfg.Datacenter, rpc: a.RPC, allowStale: d.AllowStale, local: a.srv.State}
	} else {
		cc := cache.DefaultConfig()
		cc.Datacenter = cfg.Datacenter
		cc.MaxEntries = cfg.Cache.MaxEntries
		cc.MaxStale = cfg.Cache.MaxStale.Duration()
		cc.NegativeTTL = time.Duration(d.SOA.MinTTL) * time.Second
		cc2, err := cache.New(cc, a.RPC, a.log.Named("cache"), a.reg)
		if err != nil {
			return err
		}
		a.cache, cat = cc2, cc2
	}
	srv, err := resolver.New(rc, cat, a.log.Named("dns"), a.reg)
	if err != nil {
		return err
	}
	if a.cache != nil {
		return a.startClientDNS(ctx, rc.Addr, srv)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("agent: dns on %s: %w", rc.Addr, err)
	}
	a.dns = srv
	return nil
}

// startClientDNS serves the DNS port of a client agent through the cache's
// wire-level front; the resolver answers only what the front cannot.
func (a *Agent) startClientDNS(ctx context.Context, addr string, srv *resolver.Server) error {
	cache.TuneClientRuntime() // GC settings of client agents: see cache/runtime.go
	front, err := cache.NewFront(cache.FrontConfig{Addr: addr}, srv, a.cache, a.log.Named("dns"))
	if err != nil {
		return err
	}
	if err := front.Start(ctx); err != nil {
		return fmt.Errorf("agent: dns on %s: %w", addr, err)
	}
	a.dns, a.front = srv, front
	return nil
}

func (a *Agent) startHTTP() error {
	addr := net.JoinHostPort(a.cfg.ClientAddr, strconv.Itoa(a.cfg.Ports.HTTP))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent: http on %s: %w", addr, err)
	}
	a.httpLn = ln
	a.httpSrv = &http.Server{
		Handler:           withPprof(agenthttp.New(a, a.log.Named("http"))),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ErrorLog:          zap.NewStdLog(a.log.Named("http")),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", zap.Error(err))
		}
	}()
	return nil
}

// withPprof serves net/http/pprof under /debug/pprof/ next to api when
// CAIRN_PPROF=1 (benchmarks profile a server with it); otherwise api alone.
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
		}
		if a.front != nil {
			errs = append(errs, a.front.Close())
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
