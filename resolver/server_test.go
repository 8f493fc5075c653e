package resolver

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	return cfg
}

func startServer(t *testing.T, cfg Config, reg prometheus.Registerer) *Server {
	t.Helper()
	return startServerOn(t, cfg, loadFixture(t), reg)
}

// startServerOn starts a Server of cfg answering from cat; it is closed
// on cleanup.
func startServerOn(t testing.TB, cfg Config, cat Catalog, reg prometheus.Registerer) *Server {
	t.Helper()
	s, err := New(cfg, cat, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serverAddr is s's UDP or TCP address, for network "udp" or "tcp".
func serverAddr(s *Server, network string) string {
	udp, tcp := s.Addr()
	if network == "tcp" {
		return tcp.String()
	}
	return udp.String()
}

// exchange asks s name/qtype over network and returns the answer and how
// long it took.
func exchange(t testing.TB, network string, s *Server, name string, qtype uint16) (*dns.Msg, time.Duration) {
	t.Helper()
	addr := serverAddr(s, network)
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	start := time.Now()
	r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return r, time.Since(start)
}

func TestStartReturnsBindErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Addr = ln.Addr().String()
	s, err := New(cfg, loadFixture(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "listen tcp") {
		s.Close()
		t.Fatalf("Start on a busy port: %v, want a listen error", err)
	}
	// Same for a busy UDP port with a free TCP port.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg.Addr = pc.LocalAddr().String()
	s, _ = New(cfg, loadFixture(t), nil, nil)
	if err := s.Start(t.Context()); err == nil {
		s.Close()
		t.Fatal("Start on a busy UDP port succeeded")
	}
}

func TestRecursorTimeoutThenServfail(t *testing.T) {
	cfg := testConfig()
	cfg.Recursors = []string{startDead(t), startDead(t)}
	cfg.RecursorTimeout = 200 * time.Millisecond
	s := startServer(t, cfg, nil)
	r, took := exchange(t, "udp", s, "example.org.", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	// Both recursors are tried, each for the whole timeout.
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Fatalf("SERVFAIL after %v, want about 2 x 200ms", took)
	}
}

func TestNoRecursorRefusesAtOnce(t *testing.T) {
	s := startServer(t, testConfig(), nil)
	for _, network := range []string{"udp", "tcp"} {
		r, took := exchange(t, network, s, "example.org.", dns.TypeA)
		if r.Rcode != dns.RcodeRefused || took > time.Second {
			t.Fatalf("%s: rcode %s after %v, want REFUSED at once", network, dns.RcodeToString[r.Rcode], took)
		}
	}
}

func TestAnswersAreShuffled(t *testing.T) {
	s := startServer(t, testConfig(), nil)
	firsts := map[string]bool{}
	for range 60 {
		r, _ := exchange(t, "udp", s, "web.service.consul.", dns.TypeA)
		if len(r.Answer) != 3 {
			t.Fatalf("answer %v", r.Answer)
		}
		firsts[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) != 3 { // each of 3 first with p=1/3; missing one in 60 tries: ~3e-11
		t.Fatalf("first answers seen: %v, want all three", firsts)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startServer(t, testConfig(), reg)
	for range 3 {
		exchange(t, "udp", s, "web.service.consul.", dns.TypeA)
	}
	exchange(t, "tcp", s, "nope.service.consul.", dns.TypeA)
	exchange(t, "udp", s, "example.org.", dns.TypeA)
	// The server counts after writing, so the last answer can arrive first.
	var got map[string]float64
	var observed uint64
	testutil.Eventually(t, 2*time.Second, "five answers counted", func() error {
		if got, observed = gatherDNS(t, reg); observed != 5 {
			return fmt.Errorf("%d latency samples", observed)
		}
		return nil
	})
	if got["noerror"] != 3 || got["nxdomain"] != 1 || got["refused"] != 1 || observed != 5 {
		t.Fatalf("queries %v, latency samples %d", got, observed)
	}
	// A second server on the same registry is refused, not silently merged.
	if _, err := New(testConfig(), loadFixture(t), nil, reg); err == nil {
		t.Fatal("second Server on one registry accepted")
	}
}

func gatherDNS(t *testing.T, reg *prometheus.Registry) (map[string]float64, uint64) {
	t.Helper()
	got := map[string]float64{}
	var observed uint64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "cairn_dns_queries_total":
				got[labelValue(m, "result")] = m.GetCounter().GetValue()
			case "cairn_dns_query_duration_seconds":
				observed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return got, observed
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestSeveralUDPReaders(t *testing.T) {
	cfg := testConfig()
	cfg.UDPReaders = maxUDPReaders + 3 // more than the limit: capped
	s := startServer(t, cfg, nil)
	want := maxUDPReaders
	if !reusePortSpreads {
		want = 1
	}
	if len(s.conns) != want {
		t.Fatalf("%d UDP sockets, want %d", len(s.conns), want)
	}
	for range 20 {
		if r, _ := exchange(t, "udp", s, "web1.node.consul.", dns.TypeA); len(r.Answer) != 1 {
			t.Fatalf("answer %v", r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	udp, _ := s.Addr()
	m := new(dns.Msg)
	m.SetQuestion("web1.node.consul.", dns.TypeA)
	if _, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, udp.String()); err == nil {
		t.Fatal("answered after Close")
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"bad addr":         func(c *Config) { c.Addr = "nope" },
		"root domain":      func(c *Config) { c.Domain = "." },
		"alt equal":        func(c *Config) { c.AltDomain = "CONSUL" },
		"no dc":            func(c *Config) { c.Datacenter = "" },
		"bad recursor":     func(c *Config) { c.Recursors = []string{"not-an-ip"} },
		"negative limit":   func(c *Config) { c.ARecordLimit = -1 },
		"negative ttl":     func(c *Config) { c.NodeTTL = -time.Second },
		"zero rec timeout": func(c *Config) { c.Recursors = []string{"127.0.0.1"}; c.RecursorTimeout = 0 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if a, _ := recursorAddr("127.0.0.1"); a != "127.0.0.1:53" {
		t.Fatalf("recursor without port: %s", a)
	}
	if a, _ := recursorAddr("::1"); a != "[::1]:53" {
		t.Fatalf("IPv6 recursor without port: %s", a)
	}
}

func TestParseName(t *testing.T) {
	n := newNames("consul.", "dc.consul.")
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  query
	}{
		{"web.service.consul.", dns.TypeA, query{kind: kindService, service: "web"}},
		{"a.b.web.service.dc2.consul.", dns.TypeA, query{kind: kindService, service: "web", tag: "a.b", dc: "dc2"}},
		{"_web._tcp.service.consul.", dns.TypeSRV, query{kind: kindService, service: "web"}},
		{"_web._v1.dc2.consul.", dns.TypeSRV, query{kind: kindService, service: "web", tag: "v1", dc: "dc2"}},
		{"_web._v1.dc2.consul.", dns.TypeA, query{kind: kindInvalid}},
		{"my.node.node.consul.", dns.TypeA, query{kind: kindNode, node: "my.node"}},
		{"web.service.dc.consul.", dns.TypeA, query{kind: kindService, service: "web", alt: true}},
		{"web.service.a.b.c.consul.", dns.TypeA, query{kind: kindInvalid}},
		{"service.consul.", dns.TypeA, query{kind: kindInvalid}},
		{"consul.", dns.TypeA, query{kind: kindApex}},
		{"consul.org.", dns.TypeA, query{kind: kindForeign}},
		{"xconsul.", dns.TypeA, query{kind: kindForeign}},
	} {
		got := n.parse(tc.name, tc.qtype)
		if got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	for name, want := range map[string]string{
		"1.2.0.10.in-addr.arpa.": "10.0.2.1", "01.2.0.10.in-addr.arpa.": "invalid IP",
		"256.2.0.10.in-addr.arpa.": "invalid IP", "2.0.10.in-addr.arpa.": "invalid IP",
	} {
		if got := n.parse(name, dns.TypePTR).addr.String(); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func TestLargeServiceDeduplicates(t *testing.T) {
	cat := &benchCatalog{}
	for i := range 200 {
		addr := "10.9.0.1" // 200 instances, 100 on one address
		if i%2 == 1 {
			addr = "10.9.1." + strconv.Itoa(i/2)
		}
		cat.insts = append(cat.insts, Instance{Node: Node{Name: "n" + strconv.Itoa(i), Address: addr}, Service: "web", Port: 80, Status: StatusPassing})
	}
	s, err := New(testConfig(), cat, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &recorder{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", dns.TypeA)
	s.ServeDNS(w, req)
	if w.msg == nil || len(w.msg.Answer) != 101 {
		t.Fatalf("want 101 distinct addresses over TCP, got %v", w.msg)
	}
	req.SetQuestion("web.service.consul.", dns.TypeSRV)
	s.ServeDNS(w, req)
	if w.msg == nil || len(w.msg.Answer) != 200 {
		t.Fatalf("want 200 SRV records (one per node) over TCP, got %d", len(w.msg.Answer))
	}
}
