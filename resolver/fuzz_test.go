package resolver

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzParseName checks that any name parses without panicking and that
// what comes out is a piece of what went in.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"web.service.consul.", "v1.web.service.dc2.consul.", "_web._tcp.service.consul.",
		"_web._tcp.consul.", "web1.node.dc1.dc.consul.", "0a000101.addr.consul.",
		"20010db8000000000000000000000001.addr.dc1.cairn.", "1.1.0.10.in-addr.arpa.",
		"consul.", "a..b.consul.", "\\046.service.consul.", ".service.consul.",
		"_.service.consul.", "_._.service.consul.", "x.query.consul.", "example.org.",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.",
	} {
		f.Add(s, dns.TypeA)
		f.Add(s, dns.TypeSRV)
	}
	n := newNames("consul.", "cairn.")
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		name = dns.Fqdn(strings.ToLower(name))
		q := n.parse(name, qtype)
		for _, part := range []string{q.dc, q.service, q.tag, q.node} {
			if !strings.Contains(name, part) {
				t.Fatalf("%q: part %q not in the name", name, part)
			}
		}
		switch q.kind {
		case kindService:
			if q.service == "" {
				t.Fatalf("%q: service kind without a service", name)
			}
		case kindQuery:
			if q.service == "" {
				t.Fatalf("%q: query kind without a query name", name)
			}
		case kindNode:
			if q.node == "" {
				t.Fatalf("%q: node kind without a node", name)
			}
		case kindAddr:
			if !q.addr.IsValid() {
				t.Fatalf("%q: addr kind without an address", name)
			}
		case kindForeign, kindInvalid, kindApex, kindPTR:
		default:
			t.Fatalf("%q: kind %d", name, q.kind)
		}
		if strings.Contains(q.dc, ".") {
			t.Fatalf("%q: datacenter %q has a dot", name, q.dc)
		}
	})
}

// serveRaw does what the miekg/dns server does with a datagram, then
// hands the message to s. It reports what was written (nil: dropped).
func serveRaw(t *testing.T, s *Server, raw []byte) *dns.Msg {
	if len(raw) < 12 {
		return nil // shorter than a header: miekg/dns drops it
	}
	var h dns.Header
	h.Id = binary.BigEndian.Uint16(raw)
	h.Bits = binary.BigEndian.Uint16(raw[2:])
	h.Qdcount = binary.BigEndian.Uint16(raw[4:])
	h.Ancount = binary.BigEndian.Uint16(raw[6:])
	h.Nscount = binary.BigEndian.Uint16(raw[8:])
	h.Arcount = binary.BigEndian.Uint16(raw[10:])
	switch dns.DefaultMsgAcceptFunc(h) {
	case dns.MsgIgnore:
		return nil
	case dns.MsgReject, dns.MsgRejectNotImplemented:
		return nil // answered by miekg/dns itself, not by us
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		return nil // miekg/dns answers FORMERR
	}
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	s.ServeDNS(w, req)
	if w.writes > 1 {
		t.Fatalf("%d writes for one query", w.writes)
	}
	if w.writes == 1 && w.msg == nil {
		t.Fatalf("answer does not unpack: %x", w.raw)
	}
	if w.msg != nil {
		if !w.msg.Response || w.msg.Id != req.Id {
			t.Fatalf("answer is not a response to the query: %v", w.msg)
		}
		if req.IsEdns0() == nil && len(w.raw) > defaultUDPSize && len(w.msg.Answer) > 1 {
			t.Fatalf("UDP answer of %d bytes to a client without EDNS0", len(w.raw))
		}
	}
	return w.msg
}

// FuzzServeDNS feeds whole packets through the server's unpack path into
// ServeDNS: no panic, at most one well-formed answer.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"web.service.consul.", dns.TypeA, false}, {"many.service.consul.", dns.TypeSRV, true},
		{"_web._tcp.consul.", dns.TypeSRV, false}, {"db1.node.consul.", dns.TypeTXT, false},
		{"0a000101.addr.consul.", dns.TypeAAAA, false}, {"1.1.0.10.in-addr.arpa.", dns.TypePTR, false},
		{"consul.", dns.TypeSOA, true}, {"consul.", dns.TypeNS, false}, {"example.org.", dns.TypeA, false},
		{"legacy.service.consul.", dns.TypeANY, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(1232, false)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	cat := loadFixture(f)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.AltDomain = "cairn."
	s, err := New(cfg, cat, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		serveRaw(t, s, raw)
	})
}

// TestMalformedOverSockets sends the fuzz corpus and junk as raw datagrams
// and TCP frames to a running server, which must keep answering.
func TestMalformedOverSockets(t *testing.T) {
	s, err := New(func() Config { c := DefaultConfig(); c.Addr = "127.0.0.1:0"; return c }(), loadFixture(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp, tcp := s.Addr()

	packets := [][]byte{{}, {0}, make([]byte, 12), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	files, _ := filepath.Glob("testdata/fuzz/FuzzServeDNS/*")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Corpus files are "go test fuzz v1" with one []byte("...") line.
		if b, ok := decodeCorpusBytes(string(raw)); ok {
			packets = append(packets, b)
		}
	}
	uc, err := net.Dial("udp", udp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for _, p := range packets {
		uc.Write(p)
		tc, err := net.Dial("tcp", tcp.String())
		if err != nil {
			t.Fatal(err)
		}
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(p)))
		tc.Write(append(l[:], p...))
		tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		tc.Read(make([]byte, 1024)) // an answer or nothing: both fine
		tc.Close()
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := serverAddr(s, network)
		m := new(dns.Msg)
		m.SetQuestion("web.service.consul.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 3 {
			t.Fatalf("%s after %d malformed packets: %v %v", network, len(packets), r, err)
		}
	}
	t.Logf("%d malformed or odd packets sent", len(packets))
}

// decodeCorpusBytes reads the []byte value of a one-value fuzz corpus file.
func decodeCorpusBytes(s string) ([]byte, bool) {
	_, rest, ok := strings.Cut(s, "[]byte(")
	if !ok {
		return nil, false
	}
	rest = strings.TrimSpace(rest)
	rest = strings.TrimSuffix(rest, ")")
	out, err := strconv.Unquote(rest)
	if err != nil {
		return nil, false
	}
	return []byte(out), true
}
