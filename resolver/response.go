package resolver

import (
	"context"
	"math/rand/v2"
	"net/netip"

	"github.com/miekg/dns"
)

// response holds everything one answer needs, pooled so the hot path
// reuses record structs, slices and the pack buffer between queries. Nothing
// in it outlives the ServeDNS call that took it from the pool.
type response struct {
	// ctx is the query's: the Catalog gets it (on the UDP path it carries
	// the set of Deps the answer is built from, see packed.go).
	ctx      context.Context
	msg      dns.Msg
	question [1]dns.Question
	answer   []dns.RR
	extra    []dns.RR
	ns       []dns.RR
	insts    []Instance
	as       []dns.A
	aaaas    []dns.AAAA
	ips      []byte
	seen     []netip.Addr
	order    []int32
	soa      dns.SOA
	opt      dns.OPT
	buf      []byte
}

// initial sizes: enough for a typical answer without growing.
const (
	pooledRecords = 16
	pooledBuf     = 1232 // a common EDNS0 size; larger answers grow it
)

func newResponse() *response {
	return &response{
		answer: make([]dns.RR, 0, pooledRecords),
		extra:  make([]dns.RR, 0, pooledRecords),
		insts:  make([]Instance, 0, pooledRecords),
		as:     make([]dns.A, 0, pooledRecords),
		ips:    make([]byte, 0, 16*pooledRecords),
		buf:    make([]byte, pooledBuf),
	}
}

// reset prepares r for the next query and drops references to catalog data.
func (r *response) reset() {
	clear(r.insts)
	r.insts = r.insts[:0]
	clear(r.answer[:cap(r.answer)])
	clear(r.extra[:cap(r.extra)])
	r.answer, r.extra, r.ns = r.answer[:0], r.extra[:0], nil
	r.as, r.aaaas, r.ips, r.seen, r.order = r.as[:0], r.aaaas[:0], r.ips[:0], r.seen[:0], r.order[:0]
	r.msg = dns.Msg{}
	r.ctx = nil
	r.soa = dns.SOA{}
}

// ipRR returns an A or AAAA record for a, owned by r.
func (r *response) ipRR(name string, a netip.Addr, ttl uint32) dns.RR {
	hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		start := len(r.ips)
		r.ips = append(r.ips, b[:]...)
		hdr.Rrtype = dns.TypeA
		r.as = append(r.as, dns.A{Hdr: hdr, A: r.ips[start:len(r.ips):len(r.ips)]})
		return &r.as[len(r.as)-1]
	}
	b := a.As16()
	start := len(r.ips)
	r.ips = append(r.ips, b[:]...)
	hdr.Rrtype = dns.TypeAAAA
	r.aaaas = append(r.aaaas, dns.AAAA{Hdr: hdr, AAAA: r.ips[start:len(r.ips):len(r.ips)]})
	return &r.aaaas[len(r.aaaas)-1]
}

// shuffled returns a random permutation of [0, n): answers are shuffled by
// index so the (large) instances are not moved.
func (r *response) shuffled(n int) []int32 {
	r.order = r.order[:0]
	for i := range n {
		r.order = append(r.order, int32(i))
	}
	rand.Shuffle(n, func(i, j int) { r.order[i], r.order[j] = r.order[j], r.order[i] })
	return r.order
}

// seenAddr reports whether a was already answered, and records it.
func (r *response) seenAddr(a netip.Addr) bool {
	for _, s := range r.seen {
		if s == a {
			return true
		}
	}
	r.seen = append(r.seen, a)
	return false
}
