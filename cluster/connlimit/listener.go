package connlimit

import (
	"github.com/cairnd/cairn/cluster/promutil"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Refusal reasons, the values of the reason label.
const (
	ReasonPerClient = "per_client"
	ReasonTotal     = "total"
)

// Config is one listener's limits. Zero means unlimited.
type Config struct {
	// Name labels logs and names metrics: cairn_<Name>_conns_refused_total.
	// Use a metric-safe word ("http", "rpc", "dns_tcp").
	Name         string
	MaxPerClient int
	MaxTotal     int
}

// Metrics are a listener's collectors. Several Listeners (or several
// servers in one test process) may share one registry: the first
// registration of a name wins and later ones reuse it.
type Metrics struct {
	refused *prometheus.CounterVec
	open    prometheus.Gauge
}

// NewMetrics registers the collectors of listener name on reg (nil: kept
// unregistered).
func NewMetrics(reg prometheus.Registerer, name string) *Metrics {
	m := &Metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_" + name + "_conns_refused_total",
			Help: "Connections accepted and closed at once because a limit was reached, by reason (per_client, total).",
		}, []string{"reason"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_" + name + "_conns_open",
			Help: "Connections accepted and not yet closed on this listener.",
		}),
	}
	m.refused = promutil.Register(reg, m.refused)
	m.open = promutil.Register(reg, m.open)
	return m
}

// Refused returns the refusal counter of reason (for tests and the README).
func (m *Metrics) Refused(reason string) prometheus.Counter {
	return m.refused.WithLabelValues(reason)
}

// Listener wraps a net.Listener with Config's limits.
type Listener struct {
	net.Listener
	cfg     Config
	log     *zap.Logger
	metrics *Metrics
	peerLog *PeerLog

	mu    sync.Mutex
	perIP map[netip.Addr]int
	total int
}

// Wrap returns ln limited by cfg. logger and m may be nil. When a total
// cap is set, one client may hold at most half of it (whatever
// MaxPerClient says), so a single flooding client always leaves room for
// others: at a 1,024 file limit the total is 192 and Consul's HTTP default
// of 200 per client would otherwise let one process take all of it.
func Wrap(ln net.Listener, cfg Config, logger *zap.Logger, m *Metrics) *Listener {
	if cfg.MaxTotal > 0 && (cfg.MaxPerClient <= 0 || cfg.MaxPerClient > cfg.MaxTotal/2) {
		cfg.MaxPerClient = max(cfg.MaxTotal/2, 1)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics(nil, cfg.Name)
	}
	return &Listener{
		Listener: ln,
		cfg:      cfg,
		log:      logger,
		metrics:  m,
		peerLog:  NewPeerLog(LogInterval),
		perIP:    make(map[netip.Addr]int),
	}
}

// Accept returns the next connection within the limits; connections over a
// limit are closed and skipped.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := PeerIP(c.RemoteAddr())
		if reason := l.admit(ip); reason != "" {
			// Count before closing: whoever sees the close sees the count.
			l.metrics.refused.WithLabelValues(reason).Inc()
			if l.peerLog.Allow(ip.String()) {
				limit := l.cfg.MaxPerClient
				if reason == ReasonTotal {
					limit = l.cfg.MaxTotal
				}
				l.log.Warn("connection limit reached, refusing connections from this peer (logged once a minute per peer)",
					zap.String("listener", l.cfg.Name), zap.String("remote", ip.String()),
					zap.String("reason", reason), zap.Int("limit", limit))
			}
			c.Close()
			continue
		}
		l.metrics.open.Inc()
		return &conn{Conn: c, l: l, ip: ip}, nil
	}
}

// admit takes a slot for ip, or returns the reason it cannot.
func (l *Listener) admit(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxTotal > 0 && l.total >= l.cfg.MaxTotal {
		return ReasonTotal
	}
	if l.cfg.MaxPerClient > 0 && l.perIP[ip] >= l.cfg.MaxPerClient {
		return ReasonPerClient
	}
	l.total++
	l.perIP[ip]++
	return ""
}

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	l.total--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
	l.metrics.open.Dec()
}

// Open reports the connections held now, in all and from ip.
func (l *Listener) Open(ip netip.Addr) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip]
}

// PeerIP is the IP of a TCP peer address (IPv4-mapped IPv6 unmapped, so
// one client counts once whichever way it connected). Non-IP addresses
// (unix sockets) map to the zero Addr and share one slot pool.
func PeerIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// conn releases its slot on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	ip   netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// NetConn returns the underlying connection (as tls.Conn does).
func (c *conn) NetConn() net.Conn { return c.Conn }
