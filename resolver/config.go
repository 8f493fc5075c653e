package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SOAConfig holds the timers of the SOA record served at the domain apex
// and in the authority section of negative answers (dns_config.soa).
type SOAConfig struct {
	Refresh uint32
	Retry   uint32
	Expire  uint32
	MinTTL  uint32
}

// Config configures a Server. Field names follow Consul's dns_config keys.
type Config struct {
	// Addr is the host:port bound for both UDP and TCP (--client, --dns-port).
	Addr string
	// LimitTCP, if set, wraps the TCP listener (the agent's connection
	// caps); miekg/dns's own read (2 s) and idle (8 s) timeouts apply.
	LimitTCP func(net.Listener) net.Listener
	// Domain (--domain) and AltDomain (alt_domain) are answered
	// authoritatively; AltDomain may be empty.
	Domain    string
	AltDomain string
	// Datacenter is the default datacenter of names without one.
	Datacenter string
	// NodeName is this agent's node name.
	NodeName string

	// Recursors receive every name outside Domain/AltDomain, in order.
	// A missing port means 53.
	Recursors       []string
	RecursorTimeout time.Duration // recursor_timeout

	// AllowStale and MaxStale are Consul's allow_stale and max_stale. The
	// resolver does not interpret them: the agent hands them to its Catalog
	// implementation, which decides how stale a read may be.
	AllowStale bool
	MaxStale   time.Duration

	NodeTTL time.Duration // node_ttl
	// ServiceTTL maps service names to TTLs (service_ttl). A key ending in
	// "*" is a prefix; the exact name wins, then the longest prefix, and "*"
	// alone matches everything.
	ServiceTTL map[string]time.Duration

	OnlyPassing bool // only_passing
	// TranslateWANAddrs (translate_wan_addrs): answers for another
	// datacenter use the nodes' WAN addresses.
	TranslateWANAddrs  bool
	EnableTruncate     bool // enable_truncate: set TC on trimmed UDP answers
	UDPAnswerLimit     int  // udp_answer_limit (non-EDNS UDP queries)
	ARecordLimit       int  // a_record_limit (0: unlimited)
	DisableCompression bool // disable_compression
	// NodeMetaTXT is enable_additional_node_meta_txt: node meta as TXT
	// records in the additional section of node A/AAAA and SRV answers.
	NodeMetaTXT bool
	SOA         SOAConfig

	// UDPReaders is how many UDP sockets share Addr with SO_REUSEPORT (each
	// with its own reader goroutine), at most maxUDPReaders. 0 picks one
	// per CPU the process may run on. Ignored where SO_REUSEPORT does not
	// spread datagrams (everywhere but Linux): one socket.
	UDPReaders int
}

// Limits. Each is Consul's value unless said otherwise.
const (
	// maxUDPAnswerLimit caps udp_answer_limit: ~25 A records fit in 512
	// bytes, but more than 8 only slows clients down (Consul's cap).
	maxUDPAnswerLimit = 8
	// defaultUDPSize is the RFC 1035 limit for clients without EDNS0.
	defaultUDPSize = 512
	// maxUDPSize is the largest EDNS0 size honoured: 64 KiB minus IP and
	// UDP headers, as Consul does.
	maxUDPSize = 65535 - 68
	// maxTCPSize is the most a DNS message can carry over TCP, minus
	// headroom for the header (Consul's 65523).
	maxTCPSize = 65523
	// maxRecurseRecords limits records taken from a recursor for a hostname
	// service address when the client did not send EDNS0.
	maxRecurseRecords = 5
	// maxRecursionLevel bounds CNAME chains that point back into our domain.
	maxRecursionLevel = 3
	// maxNameservers is how many servers are listed in NS answers.
	maxNameservers = 3
)

// Socket limits of the DNS port, the same on server and client agents.
const (
	// maxUDPReaders bounds the UDP sockets sharing the port (SO_REUSEPORT,
	// each with one reader): beyond the core count they only add contention.
	maxUDPReaders = 8
	// udpSocketBuffer is the kernel buffer asked for each UDP socket, both
	// directions, so bursts are queued rather than dropped. The kernel caps
	// it at net.core.rmem_max/wmem_max.
	udpSocketBuffer = 4 << 20
	// udpBatchSize bounds the datagrams one reader takes from its socket
	// per syscall (recvmmsg, then one sendmmsg for their packed answers):
	// under load the kernel has several queued, and each syscall pair
	// saved is CPU the answers no longer pay; at moderate load a batch is
	// one datagram, as before.
	udpBatchSize = 16
	// udpReadSize is the largest query datagram read; queries are small but
	// EDNS0 options can push them past 512 bytes.
	udpReadSize = 4096
	// maxInFlight bounds UDP queries on the full path at once (each may
	// wait for a server or a recursor); beyond it queries are dropped and
	// the client retries, so a flood cannot grow goroutines without bound.
	maxInFlight = 4096
	// readTimeout bounds how long a blocking reader sleeps before it looks
	// at Close, in case shutdown(2) did not wake it (udp_linux.go). Linux
	// does wake a reader of an unconnected UDP socket on shutdown, so this
	// is a safety net only, and long: each expiry wakes the reader's thread
	// and, through its next syscall entry, sysmon's retake loop, about 25
	// wake-ups. At 250 ms an idle client agent woke 253 times a second
	// (191 of them sysmon); at 10 s, see client_idle_cpu_pct in make bench.
	readTimeout = 10 * time.Second
	// maxBindAttempts bounds retries when port 0 gave a TCP port whose UDP
	// twin is busy.
	maxBindAttempts = 5
)

// DefaultConfig returns Consul's defaults: 127.0.0.1:8600, domain consul.,
// datacenter dc1, TTLs 0, allow_stale with max_stale 87600h, three UDP
// answers, no truncation flag, recursor_timeout 2s, SOA 3600/600/86400/0.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8600",
		Domain:          "consul.",
		Datacenter:      "dc1",
		RecursorTimeout: 2 * time.Second,
		AllowStale:      true,
		MaxStale:        87600 * time.Hour,
		UDPAnswerLimit:  3,
		NodeMetaTXT:     true,
		SOA:             SOAConfig{Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: 0},
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("resolver: addr %q: %w", c.Addr, err)
	}
	if c.Domain == "" || c.Domain == "." {
		return errors.New("resolver: domain must not be empty or the root")
	}
	if _, ok := dns.IsDomainName(c.Domain); !ok {
		return fmt.Errorf("resolver: domain %q is not a domain name", c.Domain)
	}
	if c.AltDomain != "" {
		if _, ok := dns.IsDomainName(c.AltDomain); !ok || c.AltDomain == "." {
			return fmt.Errorf("resolver: alt_domain %q is not a domain name", c.AltDomain)
		}
		if strings.EqualFold(dns.Fqdn(c.AltDomain), dns.Fqdn(c.Domain)) {
			return errors.New("resolver: alt_domain equals domain")
		}
	}
	if c.Datacenter == "" {
		return errors.New("resolver: datacenter must be set")
	}
	for _, r := range c.Recursors {
		if _, err := recursorAddr(r); err != nil {
			return err
		}
	}
	if len(c.Recursors) > 0 && c.RecursorTimeout <= 0 {
		return errors.New("resolver: recursor_timeout must be positive")
	}
	if c.NodeTTL < 0 {
		return errors.New("resolver: node_ttl must not be negative")
	}
	for k, v := range c.ServiceTTL {
		if v < 0 {
			return fmt.Errorf("resolver: service_ttl %q must not be negative", k)
		}
	}
	if c.UDPAnswerLimit < 1 {
		return errors.New("resolver: udp_answer_limit must be at least 1")
	}
	if c.ARecordLimit < 0 {
		return errors.New("resolver: a_record_limit must not be negative")
	}
	if c.UDPReaders < 0 {
		return errors.New("resolver: udp readers must not be negative")
	}
	return nil
}

// recursorAddr checks a recursor address (an IP literal, optionally with a
// port) and adds the default port 53 when there is none.
func recursorAddr(r string) (string, error) {
	if ap, err := netip.ParseAddrPort(r); err == nil {
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(r, "["), "]"))
	if err != nil {
		return "", fmt.Errorf("resolver: recursor %q: want an IP address with an optional port", r)
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

// serviceTTLs resolves service_ttl lookups: exact names first, then the
// longest "prefix*" key.
type serviceTTLs struct {
	exact    map[string]uint32
	prefixes []ttlPrefix // longest first
}

type ttlPrefix struct {
	prefix string
	ttl    uint32
}

func newServiceTTLs(m map[string]time.Duration) serviceTTLs {
	var t serviceTTLs
	for k, v := range m {
		secs := uint32(v / time.Second)
		k = strings.ToLower(k)
		if p, ok := strings.CutSuffix(k, "*"); ok {
			t.prefixes = append(t.prefixes, ttlPrefix{p, secs})
			continue
		}
		if t.exact == nil {
			t.exact = make(map[string]uint32)
		}
		t.exact[k] = secs
	}
	// Longest prefix first, so the first match is the best.
	for i := 1; i < len(t.prefixes); i++ {
		for j := i; j > 0 && len(t.prefixes[j].prefix) > len(t.prefixes[j-1].prefix); j-- {
			t.prefixes[j], t.prefixes[j-1] = t.prefixes[j-1], t.prefixes[j]
		}
	}
	return t
}

func (t *serviceTTLs) lookup(service string) uint32 {
	if ttl, ok := t.exact[service]; ok {
		return ttl
	}
	for _, p := range t.prefixes {
		if strings.HasPrefix(service, p.prefix) {
			return p.ttl
		}
	}
	return 0
}
