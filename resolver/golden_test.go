package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A golden case, read from testdata/cases/*.txt:
//
//	=== <name>
//	config: only_passing=true recursor=upstream   (optional)
//	query: web.service.consul. A
//	transport: udp | tcp | both                   (default both)
//	edns: 4096                                    (optional)
//	rcode: NOERROR
//	flags: qr aa rd
//	answer-count: 3     (optional: the answer is N (or N-M) records out of those listed)
//	answer:
//	<zone-file records>
//	authority:
//	additional:
//
// Sections compare as multisets (answers are shuffled); SOA serials are
// ignored (they are the clock); the OPT record is checked apart from
// additional. With answer-count, additional must be a subset too.
type goldenCase struct {
	file, name  string
	line        int
	config      string
	qname       string
	qtype       uint16
	transport   string
	edns        uint16
	rcode       int
	flags       string
	answerCount int // with answerMax: a range
	answerMax   int
	sections    [3][]string // answer, authority, additional (normalised)
}

func readCases(t *testing.T) []goldenCase {
	t.Helper()
	files, err := filepath.Glob("testdata/cases/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files: %v", err)
	}
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, parseCaseFile(t, f)...)
	}
	return cases
}

func parseCaseFile(t *testing.T, path string) []goldenCase {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var cases []goldenCase
	var c *goldenCase
	section := -1
	sc := bufio.NewScanner(fh)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, a ...any) {
			t.Fatalf("%s:%d: %s", path, ln, fmt.Sprintf(format, a...))
		}
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			cases = append(cases, goldenCase{file: filepath.Base(path), name: name, line: ln, transport: "both", flags: normFlags([]string{"qr", "aa", "rd"})})
			c, section = &cases[len(cases)-1], -1
			continue
		}
		if c == nil {
			fail("record before the first === case")
		}
		if section < 0 {
			key, val, _ := strings.Cut(line, ":")
			if ok, err := c.setField(key, strings.TrimSpace(val)); ok {
				if err != nil {
					fail("%v", err)
				}
				continue
			}
		}
		switch {
		case line == "answer:":
			section = 0
		case line == "authority:":
			section = 1
		case line == "additional:":
			section = 2
		default:
			if section < 0 {
				fail("unexpected line %q", line)
			}
			rr, err := dns.NewRR(line)
			if err != nil || rr == nil {
				fail("bad record %q: %v", line, err)
			}
			c.sections[section] = append(c.sections[section], normRR(rr))
		}
	}
	return cases
}

// setField sets the header field key (config, query, transport, edns,
// rcode, flags, answer-count) to val; false if key is none of them.
func (c *goldenCase) setField(key, val string) (bool, error) {
	switch key {
	case "config":
		c.config = val
	case "query":
		f := strings.Fields(val)
		if len(f) != 2 {
			return true, errors.New("query: want NAME TYPE")
		}
		c.qname, c.qtype = f[0], dns.StringToType[f[1]]
		if c.qtype == 0 {
			return true, fmt.Errorf("unknown type %q", f[1])
		}
	case "transport":
		c.transport = val
	case "edns":
		n, err := strconv.Atoi(val)
		if err != nil {
			return true, fmt.Errorf("edns: %v", err)
		}
		c.edns = uint16(n)
	case "rcode":
		rc, ok := dns.StringToRcode[val]
		if !ok {
			return true, fmt.Errorf("unknown rcode %q", val)
		}
		c.rcode = rc
	case "flags":
		c.flags = normFlags(strings.Fields(val))
	case "answer-count":
		lo, hi, isRange := strings.Cut(val, "-")
		c.answerCount, _ = strconv.Atoi(lo)
		c.answerMax = c.answerCount
		if isRange {
			c.answerMax, _ = strconv.Atoi(hi)
		}
	default:
		return false, nil
	}
	return true, nil
}

func normFlags(f []string) string {
	slices.Sort(f)
	return strings.Join(f, " ")
}

func msgFlags(m *dns.Msg) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"}, {m.RecursionAvailable, "ra"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return normFlags(f)
}

// normRR renders a record canonically, with names lower-cased and the SOA
// serial zeroed.
func normRR(rr dns.RR) string {
	rr = dns.Copy(rr)
	if soa, ok := rr.(*dns.SOA); ok {
		soa.Serial = 0
	}
	return strings.Join(strings.Fields(strings.ToLower(rr.String())), " ")
}

func normSection(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, normRR(rr))
	}
	slices.Sort(out)
	return out
}

// subset reports whether got ⊆ want as multisets.
func subset(got, want []string) bool {
	left := slices.Clone(want)
	for _, g := range got {
		i := slices.Index(left, g)
		if i < 0 {
			return false
		}
		left = slices.Delete(left, i, i+1)
	}
	return true
}

func (c *goldenCase) check(t *testing.T, via string, m *dns.Msg) {
	t.Helper()
	where := fmt.Sprintf("%s:%d %q via %s", c.file, c.line, c.name, via)
	if m == nil {
		t.Errorf("%s: no answer", where)
		return
	}
	if m.Rcode != c.rcode {
		t.Errorf("%s: rcode %s, want %s\n%v", where, dns.RcodeToString[m.Rcode], dns.RcodeToString[c.rcode], m)
	}
	if got := msgFlags(m); got != c.flags {
		t.Errorf("%s: flags %q, want %q", where, got, c.flags)
	}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, c.qname) || m.Question[0].Qtype != c.qtype {
		t.Errorf("%s: question %v", where, m.Question)
	}
	if (m.IsEdns0() != nil) != (c.edns != 0) {
		t.Errorf("%s: OPT present = %v, want %v", where, m.IsEdns0() != nil, c.edns != 0)
	}
	names := []string{"answer", "authority", "additional"}
	for i, got := range [][]string{normSection(m.Answer), normSection(m.Ns), normSection(m.Extra)} {
		want := slices.Clone(c.sections[i])
		slices.Sort(want)
		if c.answerCount > 0 && i != 1 {
			if (i == 0 && (len(got) < c.answerCount || len(got) > c.answerMax)) || !subset(got, want) {
				t.Errorf("%s: %s: got %d records\n  %s\nwant %d of\n  %s", where, names[i], len(got),
					strings.Join(got, "\n  "), c.answerCount, strings.Join(want, "\n  "))
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %s:\ngot\n  %s\nwant\n  %s", where, names[i], strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

// testEnv holds the upstream recursors the cases may name.
type testEnv struct {
	upstream string // answers example names
	dead     string // reads nothing, answers nothing
}

func startUpstream(t testing.TB) string {
	t.Helper()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "legacy.example.com.", "ext.example.com.":
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.10")
				m.Answer = append(m.Answer, rr)
			}
		case "example.org.":
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR("example.org. 300 IN A 192.0.2.1")
				m.Answer = append(m.Answer, rr)
			}
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	// UDP and TCP on one port; the kernel's UDP pick may be taken for TCP.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs last: after the Shutdowns registered below
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: mux}, {Listener: ln, Handler: mux}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() { defer wg.Done(); srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// startDead returns an address whose UDP socket never answers.
func startDead(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// configFor applies a case's "config:" line to the defaults.
func configFor(t testing.TB, env testEnv, spec string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.NodeName = "server1"
	cfg.RecursorTimeout = 300 * time.Millisecond
	for _, kv := range strings.Fields(spec) {
		k, v, _ := strings.Cut(kv, "=")
		dur := func() time.Duration {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("config %s: %v", kv, err)
			}
			return d
		}
		atoi := func() int {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("config %s: %v", kv, err)
			}
			return n
		}
		switch k {
		case "only_passing":
			cfg.OnlyPassing = v == "true"
		case "enable_truncate":
			cfg.EnableTruncate = v == "true"
		case "udp_answer_limit":
			cfg.UDPAnswerLimit = atoi()
		case "a_record_limit":
			cfg.ARecordLimit = atoi()
		case "node_ttl":
			cfg.NodeTTL = dur()
		case "translate_wan_addrs":
			cfg.TranslateWANAddrs = v == "true"
		case "node_meta_txt":
			cfg.NodeMetaTXT = v == "true"
		case "disable_compression":
			cfg.DisableCompression = v == "true"
		case "alt_domain":
			cfg.AltDomain = v
		case "soa_min_ttl":
			cfg.SOA.MinTTL = uint32(atoi())
		case "service_ttl": // name:dur,name:dur
			cfg.ServiceTTL = map[string]time.Duration{}
			for _, p := range strings.Split(v, ",") {
				n, d, _ := strings.Cut(p, ":")
				pd, err := time.ParseDuration(d)
				if err != nil {
					t.Fatalf("config %s: %v", kv, err)
				}
				cfg.ServiceTTL[n] = pd
			}
		case "recursor":
			for _, r := range strings.Split(v, ",") {
				switch r {
				case "upstream":
					cfg.Recursors = append(cfg.Recursors, env.upstream)
				case "dead":
					cfg.Recursors = append(cfg.Recursors, env.dead)
				default:
					t.Fatalf("config %s: unknown recursor", kv)
				}
			}
		default:
			t.Fatalf("unknown config key %q", k)
		}
	}
	return cfg
}

func (c *goldenCase) request() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(c.qname, c.qtype)
	if c.edns != 0 {
		m.SetEdns0(c.edns, false)
	}
	return m
}

// TestGolden runs every case through ServeDNS and through real UDP and TCP
// sockets with a miekg/dns client.
func TestGolden(t *testing.T) {
	cat := loadFixture(t)
	env := testEnv{upstream: startUpstream(t), dead: startDead(t)}
	servers := map[string]*Server{}
	serverFor := func(spec string) *Server {
		if s, ok := servers[spec]; ok {
			return s
		}
		s, err := New(configFor(t, env, spec), cat, nil, nil)
		if err != nil {
			t.Fatalf("config %q: %v", spec, err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers[spec] = s
		return s
	}
	cases := readCases(t)
	for i := range cases {
		c := &cases[i]
		s := serverFor(c.config)
		udp, tcp := s.Addr()
		t.Run(strings.TrimSuffix(c.file, ".txt")+"/"+c.name, func(t *testing.T) {
			if c.transport != "tcp" {
				w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
				s.ServeDNS(w, c.request())
				c.check(t, "ServeDNS", w.msg)
			}
			for _, tr := range []string{"udp", "tcp"} {
				if c.transport != "both" && c.transport != tr {
					continue
				}
				addr := udp.String()
				if tr == "tcp" {
					addr = tcp.String()
				}
				cl := &dns.Client{Net: tr, Timeout: 5 * time.Second, UDPSize: 65535}
				m, _, err := cl.Exchange(c.request(), addr)
				if err != nil {
					t.Errorf("%s:%d via %s: %v", c.file, c.line, tr, err)
					continue
				}
				c.check(t, tr, m)
			}
		})
	}
	t.Logf("%d cases, %d server configs", len(cases), len(servers))
}

// recorder is a dns.ResponseWriter that keeps the answer.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	raw    []byte
	writes int
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8600} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}
func (r *recorder) Write(b []byte) (int, error) {
	r.writes++
	r.raw = append(r.raw[:0], b...)
	m := new(dns.Msg)
	if err := m.Unpack(r.raw); err != nil {
		return 0, err
	}
	r.msg = m
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}
