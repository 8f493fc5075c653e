package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Server is the DNS server: a dns.Handler plus every socket of the DNS
// port that feeds it: TCP through miekg/dns, UDP through its own readers
// (udp.go) that answer repeated questions from packed bytes when the
// Catalog allows it (packed.go).
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

	// packed is the store of packed answers, nil unless the Catalog is a
	// PackedCatalog (client agents).
	packed *packedStore
	// readers holds one hit counter per UDP reader, on its own cache line.
	readers [maxUDPReaders]reader
	// inFlight holds a token per UDP query on the full path.
	inFlight chan struct{}

	mu      sync.Mutex
	started bool
	tcp     *dns.Server
	conns   []*udpSock
	udpAddr net.Addr
	tcpAddr net.Addr
	closed  atomic.Bool
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
	s.inFlight = make(chan struct{}, maxInFlight)
	if pc, ok := cat.(PackedCatalog); ok {
		s.packed = newPackedStore()
		pc.CountPackedHits(s.packedHits)
	}
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

// udpReaders is how many UDP sockets (and reader goroutines) to open.
// NumCPU, not GOMAXPROCS: it follows the CPU affinity (taskset), and a
// client agent raises GOMAXPROCS above it on one core (runtime.go).
func (s *Server) udpReaders() int {
	n := s.cfg.UDPReaders
	if n == 0 {
		n = min(runtime.NumCPU(), maxUDPReaders)
	}
	if !reusePortSpreads {
		n = 1
	}
	return min(max(n, 1), maxUDPReaders)
}

// Start binds TCP, then the UDP sockets on the same port, and serves until
// Close. Bind errors are returned before anything runs, so callers can fail
// fast; when Start returns nil the server is answering.
func (s *Server) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("resolver: already started")
	}
	var (
		ln    net.Listener
		conns []*udpSock
		err   error
	)
	readers := s.udpReaders()
	// Server agents (no packed answers) read through the netpoller; client
	// agents read blocking and need a second P for it (listenUDP).
	poll := s.packed == nil
	if !poll {
		ensureProcs()
	}
	_, port, _ := net.SplitHostPort(s.cfg.Addr)
	for attempt := 0; ; attempt++ {
		ln, conns, err = bindAll(s.cfg.Addr, readers, poll)
		// With port 0 the TCP port may be taken for UDP: try another.
		if err == nil || port != "0" || attempt == maxBindAttempts {
			break
		}
	}
	if err != nil {
		return err
	}
	s.conns = conns
	started := make(chan struct{})
	s.tcp = &dns.Server{Listener: limitTCP(s.cfg.LimitTCP, ln), Handler: s, NotifyStartedFunc: func() { close(started) }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.tcp.ActivateAndServe(); err != nil {
			s.log.Error("dns tcp stopped", zap.Error(err))
		}
	}()
	<-started
	for i, c := range conns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveUDP(c, &s.readers[i])
		}()
	}
	s.udpAddr, s.tcpAddr = conns[0].local, ln.Addr()
	s.started = true
	s.log.Info("dns listening", zap.Stringer("udp", s.udpAddr), zap.Stringer("tcp", s.tcpAddr),
		zap.Int("udp_readers", readers), zap.Bool("packed_answers", s.packed != nil))
	return nil
}

// bindAll binds TCP on addr, then readers UDP sockets on the same port.
// TCP binds first and without SO_REUSEPORT, so a port held by another
// process fails here even though the UDP sockets share theirs.
func bindAll(addr string, readers int, poll bool) (net.Listener, []*udpSock, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("resolver: listen tcp %s: %w", addr, err)
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("resolver: tcp address %s: %w", ln.Addr(), err)
	}
	var conns []*udpSock
	for range readers {
		c, err := listenUDP(bound, readers > 1, poll)
		if err != nil {
			for _, c := range conns {
				c.close()
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

// Close stops the listeners, cancels in-flight lookups and waits for every
// goroutine, queries in flight included. It is safe to call more than once.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	s.mu.Lock()
	tcp, conns := s.tcp, s.conns
	s.mu.Unlock()
	var errs []error
	if tcp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		errs = append(errs, tcp.ShutdownContext(ctx))
		cancel()
	}
	for _, c := range conns {
		c.shutdown()
	}
	s.wg.Wait()
	for _, c := range conns {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// shutdownGrace bounds how long Close waits for TCP connections to finish.
const shutdownGrace = 5 * time.Second

// limitTCP applies the optional listener wrapper of Config.LimitTCP.
func limitTCP(wrap func(net.Listener) net.Listener, ln net.Listener) net.Listener {
	if wrap == nil {
		return ln
	}
	return wrap(ln)
}
