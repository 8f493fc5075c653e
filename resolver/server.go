package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Server is the DNS server: a dns.Handler plus the UDP and TCP listeners
// that feed it.
type Server struct {
	cfg       Config
	cat       Catalog
	log       *zap.Logger
	names     names
	defaultDC string
	nodeTTL   uint32
	ttls      serviceTTLs
	recursors []string
	udpClient *dns.Client
	tcpClient *dns.Client
	soa       dns.SOA // prebuilt; only the serial changes per answer
	altSOA    dns.SOA
	metrics   *metrics
	pool      sync.Pool

	// ctx is passed to the catalog and recursors; Close cancels it so
	// in-flight lookups end.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool
	servers []*dns.Server
	udpAddr net.Addr
	tcpAddr net.Addr
	wg      sync.WaitGroup
}

// New validates cfg and returns a Server that is not yet listening.
// reg may be nil (no metrics exported).
func New(cfg Config, cat Catalog, logger *zap.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cat == nil {
		return nil, errors.New("resolver: nil catalog")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		cat:       cat,
		log:       logger,
		names:     newNames(cfg.Domain, cfg.AltDomain),
		defaultDC: strings.ToLower(cfg.Datacenter),
		nodeTTL:   uint32(cfg.NodeTTL / time.Second),
		ttls:      newServiceTTLs(cfg.ServiceTTL),
		metrics:   m,
		udpClient: &dns.Client{Net: "udp", Timeout: cfg.RecursorTimeout},
		tcpClient: &dns.Client{Net: "tcp", Timeout: cfg.RecursorTimeout},
	}
	for _, r := range cfg.Recursors {
		a, _ := recursorAddr(r) // checked by Validate
		s.recursors = append(s.recursors, a)
	}
	s.soa = s.buildSOA(s.names.domain)
	if s.names.altDomain != "" {
		s.altSOA = s.buildSOA(s.names.altDomain)
	}
	s.pool.New = func() any { return newResponse() }
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func (s *Server) buildSOA(domain string) dns.SOA {
	soa := s.cfg.SOA
	return dns.SOA{
		// The TTL equals the negative-caching TTL (Consul's choice).
		Hdr:     dns.RR_Header{Name: domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: soa.MinTTL},
		Ns:      "ns." + domain,
		Mbox:    "hostmaster." + domain,
		Refresh: soa.Refresh,
		Retry:   soa.Retry,
		Expire:  soa.Expire,
		Minttl:  soa.MinTTL,
	}
}

// udpReaders is how many SO_REUSEPORT UDP sockets to open.
func (s *Server) udpReaders() int {
	n := s.cfg.UDPReaders
	if n == 0 {
		n = min(runtime.GOMAXPROCS(0), maxUDPReaders)
	}
	if !reusePortSupported {
		n = 1
	}
	return max(n, 1)
}

// Start binds UDP and TCP on cfg.Addr and serves until Close. Bind errors
// are returned before anything runs, so callers can fail fast; when Start
// returns nil the server is answering.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("resolver: already started")
	}
	readers := s.udpReaders()
	lc := net.ListenConfig{}
	if readers > 1 {
		lc.Control = reusePort
	}
	// TCP binds first and without SO_REUSEPORT, so a port held by another
	// process fails here even though the UDP sockets share theirs.
	var (
		ln    net.Listener
		conns []net.PacketConn
		err   error
	)
	_, port, _ := net.SplitHostPort(s.cfg.Addr)
	for attempt := 0; ; attempt++ {
		ln, conns, err = bindAll(ctx, lc, s.cfg.Addr, readers)
		// With port 0 the TCP port may be taken for UDP: try another.
		if err == nil || port != "0" || attempt == maxBindAttempts {
			break
		}
	}
	if err != nil {
		return err
	}
	first := conns[0]
	for _, c := range conns {
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(udpReadBuffer) // best effort; the kernel caps it
		}
	}

	started := make(chan struct{}, len(conns)+1)
	notify := func() { started <- struct{}{} }
	for _, c := range conns {
		s.servers = append(s.servers, &dns.Server{PacketConn: c, Handler: s, UDPSize: udpReadSize, NotifyStartedFunc: notify})
	}
	s.servers = append(s.servers, &dns.Server{Listener: limitTCP(s.cfg.LimitTCP, ln), Handler: s, NotifyStartedFunc: notify})
	for _, srv := range s.servers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("dns server stopped", zap.Error(err))
			}
		}()
	}
	for range s.servers {
		<-started
	}
	s.udpAddr, s.tcpAddr = first.LocalAddr(), ln.Addr()
	s.started = true
	s.log.Info("dns listening", zap.String("udp", s.udpAddr.String()),
		zap.String("tcp", s.tcpAddr.String()), zap.Int("udp_readers", readers))
	return nil
}

// maxBindAttempts bounds retries when port 0 gave a TCP port whose UDP
// twin is busy.
const maxBindAttempts = 5

// bindAll binds TCP on addr, then readers UDP sockets on the same port.
func bindAll(ctx context.Context, lc net.ListenConfig, addr string, readers int) (net.Listener, []net.PacketConn, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("resolver: listen tcp %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	var conns []net.PacketConn
	for i := 0; i < readers; i++ {
		c, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			ln.Close()
			return nil, nil, fmt.Errorf("resolver: listen udp %s: %w", bound, err)
		}
		conns = append(conns, c)
	}
	return ln, conns, nil
}

// Addr returns the bound UDP and TCP addresses (nil before Start).
func (s *Server) Addr() (udp, tcp net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddr, s.tcpAddr
}

// Close stops the listeners, cancels in-flight lookups and waits for all
// goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// limitTCP applies the optional listener wrapper of Config.LimitTCP.
func limitTCP(wrap func(net.Listener) net.Listener, ln net.Listener) net.Listener {
	if wrap == nil {
		return ln
	}
	return wrap(ln)
}
