package cache

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// packings is more than the resolver keeps packings of one answer (4
// shuffles): after that many asks every answer comes from packed bytes.
const packings = 5

// BenchmarkWireHitUDP measures a client agent's whole hit path through a
// real socket: recvfrom, parse, packed lookup (this cache's entries as the
// resolver's Deps), patch, sendto, plus the benchmark's own write and read.
// allocs/op covers both sides. (The lookup alone without sockets is the
// resolver's BenchmarkPackedHit.)
func BenchmarkWireHitUDP(b *testing.B) {
	tier := newFakeTier()
	c, _ := New(DefaultConfig(), tier.rpc, zap.NewNop(), nil)
	defer c.Close()
	udp := startResolver(b, c, 1)
	m := new(dns.Msg)
	m.SetQuestion("web.service.consul.", dns.TypeA)
	for range packings {
		exchangeRaw(b, udp.String(), m)
	}
	conn, err := net.Dial("udp", udp.String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	p, _ := m.Pack()
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(p); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
	if c.wireHits() == 0 {
		b.Fatal("no packed hits")
	}
}
