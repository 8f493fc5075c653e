package resolver

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// benchCatalog serves one service with three passing instances, without
// allocating, like a state-store adapter would.
type benchCatalog struct{ insts []Instance }

func (b *benchCatalog) ServiceNodes(_ context.Context, _, service, _ string, _ bool, dst []Instance) ([]Instance, error) {
	if service != "web" {
		return dst, nil
	}
	return append(dst, b.insts...), nil
}
func (b *benchCatalog) Node(context.Context, string, string) (*Node, error) { return nil, nil }
func (b *benchCatalog) Nodes(context.Context, string) ([]Node, error)       { return nil, nil }
func (b *benchCatalog) ServicesByAddress(context.Context, string, string) ([]Instance, error) {
	return nil, nil
}

// discard is a ResponseWriter that only counts bytes.
type discard struct {
	n    int
	addr net.UDPAddr
}

func (d *discard) LocalAddr() net.Addr  { return &d.addr }
func (d *discard) RemoteAddr() net.Addr { return &d.addr }
func (d *discard) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	d.n += len(b)
	return err
}
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discard) Close() error                { return nil }
func (d *discard) TsigStatus() error           { return nil }
func (d *discard) TsigTimersOnly(bool)         {}
func (d *discard) Hijack()                     {}

// benchInstances are three passing instances of service web.
func benchInstances() []Instance {
	var insts []Instance
	for i, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		insts = append(insts, Instance{
			Node:    Node{Name: "n" + string(rune('1'+i)), Address: a, Datacenter: "dc1"},
			Service: "web", Port: 80, Status: StatusPassing,
		})
	}
	return insts
}

func benchServer(b *testing.B) *Server {
	cat := &benchCatalog{insts: benchInstances()}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, cat, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkServeService is the hot path: parse, catalog, build, pack.
func BenchmarkServeService(b *testing.B) { benchServe(b, dns.TypeA) }

// BenchmarkServeServiceSRV covers SRV with additional records.
func BenchmarkServeServiceSRV(b *testing.B) { benchServe(b, dns.TypeSRV) }

// benchServe measures ServeDNS answering web.service.consul. of qtype.
func benchServe(b *testing.B, qtype uint16) {
	s := benchServer(b)
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", qtype)
	w := &discard{}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, req)
	}
	if w.n == 0 {
		b.Fatal("nothing written")
	}
}

// BenchmarkServeUDP measures the full path through a real socket.
func BenchmarkServeUDP(b *testing.B) {
	s := benchServer(b)
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	udp, _ := s.Addr()
	conn, err := net.Dial("udp", udp.String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := new(dns.Msg)
	req.SetQuestion("web.service.consul.", dns.TypeA)
	q, _ := req.Pack()
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(q); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
