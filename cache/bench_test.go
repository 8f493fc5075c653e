package cache

import (
	"context"
	"net"
	"testing"

	"github.com/cairnd/cairn/resolver"
	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// BenchmarkWireHit measures the hit path without sockets: parse the query,
// find the packed answer, patch it.
func BenchmarkWireHit(b *testing.B) {
	tier := newFakeTier()
	c, _ := New(DefaultConfig(), tier.rpc, zap.NewNop(), nil)
	defer c.Close()
	rc := resolver.DefaultConfig()
	res, _ := resolver.New(rc, c, zap.NewNop(), nil)
	defer res.Close()
	f, _ := NewFront(FrontConfig{Addr: "127.0.0.1:0", Readers: 1}, res, c, zap.NewNop())
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	udp, _ := f.Addr()
	m := new(dns.Msg)
	m.SetQuestion("web.service.consul.", dns.TypeA)
	for range rotations + 1 {
		exchangeRaw(b, udp.String(), m)
	}
	p, _ := m.Pack()
	var q question
	var kb [maxKeyLen]byte
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !parseQuery(p, &q, &kb) {
			b.Fatal("not fast")
		}
		if _, ok := f.lookup(p, &q, uint32(i), out[:0]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkWireHitUDP measures a client agent's whole hit path through a
// real socket: recvfrom, parse, packed lookup, patch, sendto (plus the
// benchmark's own write and read). allocs/op covers both sides.
func BenchmarkWireHitUDP(b *testing.B) {
	tier := newFakeTier()
	c, _ := New(DefaultConfig(), tier.rpc, zap.NewNop(), nil)
	defer c.Close()
	res, _ := resolver.New(resolver.DefaultConfig(), c, zap.NewNop(), nil)
	defer res.Close()
	f, _ := NewFront(FrontConfig{Addr: "127.0.0.1:0", Readers: 1}, res, c, zap.NewNop())
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	udp, _ := f.Addr()
	m := new(dns.Msg)
	m.SetQuestion("web.service.consul.", dns.TypeA)
	for range rotations + 1 {
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
}
