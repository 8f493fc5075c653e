package resolver

import (
	"cmp"
	"context"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

func (s *Server) lookupService(r *response, qname string, qtype uint16, pq query, domain string, edns bool, level int) outcome {
	dc := s.datacenter(pq)
	insts, err := s.cat.ServiceNodes(r.ctx, dc, pq.service, pq.tag, s.cfg.OnlyPassing, r.insts[:0])
	if insts != nil {
		r.insts = insts
	}
	if err != nil {
		s.log.Debug("catalog service lookup", zap.String("service", pq.service), zap.Error(err))
		return catalogOutcome(err)
	}
	insts = s.healthy(insts)
	if len(insts) == 0 {
		return notFound
	}
	s.translateWAN(dc, insts)
	order := r.shuffled(len(insts))
	ttl := s.ttls.lookup(pq.service)
	if qtype == dns.TypeSRV {
		s.serviceSRV(r, qname, dc, domain, insts, order, ttl, edns, level)
	} else {
		s.serviceAddrs(r, qname, qtype, insts, order, ttl, edns, level)
	}
	if len(r.answer) == 0 {
		return noData
	}
	return found
}

// parseIP parses an IP address; host names and "" are rejected without
// calling netip.ParseAddr, whose error allocates.
func parseIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if strings.IndexByte(s, ':') < 0 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c != '.' && (c < '0' || c > '9') {
				return netip.Addr{}, false
			}
		}
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// wantsAddr reports whether an address of this family answers qtype.
func wantsAddr(qtype uint16, a netip.Addr) bool {
	switch qtype {
	case dns.TypeA:
		return a.Is4() || a.Is4In6()
	case dns.TypeAAAA:
		return a.Is6() && !a.Is4In6()
	case dns.TypeANY:
		return true
	}
	return false
}

// serviceAddrs answers A, AAAA and ANY for service instances: the service
// address, else the node address; a host name becomes a CNAME, used only
// when no instance has an IP answer.
func (s *Server) serviceAddrs(r *response, qname string, qtype uint16, insts []Instance, order []int32, ttl uint32, edns bool, level int) {
	if qtype != dns.TypeA && qtype != dns.TypeAAAA && qtype != dns.TypeANY {
		return
	}
	var cname []dns.RR
	var seen map[netip.Addr]struct{} // large services: avoid quadratic dedup
	if len(order) > linearDedupMax {
		seen = make(map[netip.Addr]struct{}, len(order))
	}
	count := 0
	for _, i := range order {
		in := &insts[i]
		addr := in.Address
		ip, isIP := parseIP(addr)
		if addr == "" {
			addr = in.Node.Address
			ip, isIP = parseIP(addr)
		} else if !isIP && strings.EqualFold(dns.Fqdn(addr), qname) {
			// A service address naming the service itself: use the node.
			addr = in.Node.Address
			ip, isIP = parseIP(addr)
		}
		if addr == "" {
			continue
		}
		if !isIP {
			if cname == nil { // only the first host name is followed
				cname = s.cnameChain(r.ctx, qname, addr, ttl, true, edns, level)
			}
			continue
		}
		if !wantsAddr(qtype, ip) {
			continue
		}
		if seen != nil {
			if _, dup := seen[ip]; dup {
				continue
			}
			seen[ip] = struct{}{}
		} else if r.seenAddr(ip) {
			continue
		}
		r.answer = append(r.answer, r.ipRR(qname, ip, ttl))
		count++
		if count == s.cfg.ARecordLimit {
			return
		}
	}
	if len(r.answer) == 0 && len(cname) > 0 {
		r.answer = append(r.answer, cname...)
	}
}

// cnameChain is the CNAME for a host-name address plus what the target
// resolves to. Like Consul, service answers give the resolved records the
// service TTL (setTTL) and node answers keep the recursor's.
func (s *Server) cnameChain(ctx context.Context, qname, host string, ttl uint32, setTTL, edns bool, level int) []dns.RR {
	target := dns.Fqdn(host)
	rrs := []dns.RR{&dns.CNAME{
		Hdr:    dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: target,
	}}
	return append(rrs, s.resolveHostTTL(ctx, target, ttl, setTTL, edns, level)...)
}

// resolveHost looks a host name up: inside our domain by ourselves, else
// with the recursors. Only CNAME, A and AAAA are kept, with the TTL set.
func (s *Server) resolveHost(ctx context.Context, target string, ttl uint32, edns bool, level int) []dns.RR {
	return s.resolveHostTTL(ctx, target, ttl, true, edns, level)
}

func (s *Server) resolveHostTTL(ctx context.Context, target string, ttl uint32, setTTL, edns bool, level int) []dns.RR {
	var got []dns.RR
	lower := strings.ToLower(target)
	pq := s.names.parse(lower, dns.TypeANY)
	switch pq.kind {
	case kindForeign, kindPTR:
		got = s.recurseA(target)
	default:
		if level < 1 {
			s.log.Warn("CNAME loop inside the domain, not following", zap.String("name", target))
			return nil
		}
		sub := newResponse()
		sub.ctx = ctx
		domain := s.names.domain
		if pq.alt {
			domain = s.names.altDomain
		}
		if s.lookup(sub, target, dns.TypeANY, pq, domain, edns, level-1) == found {
			got = sub.answer // sub is not pooled: its records stay valid
		}
	}
	out := got[:0]
	for _, rr := range got {
		switch rr.Header().Rrtype {
		case dns.TypeCNAME, dns.TypeA, dns.TypeAAAA:
			if setTTL {
				rr.Header().Ttl = ttl
			}
			out = append(out, rr)
			if len(out) == maxRecurseRecords && !edns {
				return out
			}
		}
	}
	return out
}

// nodeFQDN is Consul's name for a node: <node>.node.<dc>.<domain>.
func nodeFQDN(node, dc, domain string) string {
	return node + ".node." + dc + "." + domain
}

// addrFQDN is Consul's name for an address: <hex>.addr.<dc>.<domain>.
func addrFQDN(a netip.Addr, dc, domain string) string {
	var h string
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		h = hex.EncodeToString(b[:])
	} else {
		b := a.As16()
		h = hex.EncodeToString(b[:])
	}
	return h + ".addr." + dc + "." + domain
}

func srvWeight(in *Instance) uint16 {
	w := in.Weights
	if w.Passing == 0 && w.Warning == 0 {
		w = Weights{Passing: 1, Warning: 1}
	}
	switch in.Status {
	case StatusPassing:
		return uint16(w.Passing)
	case StatusWarning:
		return uint16(w.Warning)
	}
	return 1
}

// linearDedupMax is the instance count up to which duplicate addresses
// are found by scanning (no allocation); beyond it a map is cheaper.
const linearDedupMax = 64

type srvKey struct {
	node, addr string
	port       int
}

// serviceSRV answers SRV: one record per node/address/port, targets named
// as Consul names them, their addresses and node meta in additional.
func (s *Server) serviceSRV(r *response, qname, dc, domain string, insts []Instance, order []int32, ttl uint32, edns bool, level int) {
	seen := make(map[srvKey]struct{}, len(order))
	for _, i := range order {
		in := &insts[i]
		k := srvKey{in.Node.Name, in.Address, in.Port}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}

		srv := &dns.SRV{
			Hdr:      dns.RR_Header{Name: qname, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
			Priority: 1,
			Weight:   srvWeight(in),
			Port:     uint16(in.Port),
		}
		node := nodeFQDN(in.Node.Name, dc, domain)
		nodeIP, nodeOK := parseIP(in.Node.Address)
		svcIP, svcOK := parseIP(in.Address)
		switch {
		case in.Address == "" && in.Node.Address == "":
			continue
		case in.Address == "" && nodeOK,
			!svcOK && nodeOK && strings.EqualFold(dns.Fqdn(in.Address), qname):
			srv.Target = node
			r.extra = append(r.extra, r.ipRR(node, nodeIP, ttl))
		case in.Address == "":
			srv.Target = dns.Fqdn(in.Node.Address)
			r.extra = append(r.extra, s.resolveHost(r.ctx, srv.Target, ttl, edns, level)...)
		case svcOK:
			srv.Target = addrFQDN(svcIP, dc, domain)
			r.extra = append(r.extra, r.ipRR(srv.Target, svcIP, ttl))
		default:
			srv.Target = dns.Fqdn(in.Address)
			r.extra = append(r.extra, s.resolveHost(r.ctx, srv.Target, ttl, edns, level)...)
		}
		r.answer = append(r.answer, srv)
		if s.cfg.NodeMetaTXT {
			r.extra = appendMetaTXT(r.extra, node, in.Node.Meta, ttl)
		}
	}
}

// translateWAN points instances of another datacenter at their nodes'
// WAN addresses when TranslateWANAddrs is on (Consul's
// translate_wan_addrs). insts is the query's own slice of values.
func (s *Server) translateWAN(dc string, insts []Instance) {
	if !s.cfg.TranslateWANAddrs || strings.EqualFold(dc, s.defaultDC) {
		return
	}
	for i := range insts {
		if w := insts[i].Node.WANAddress; w != "" {
			insts[i].Node.Address = w
		}
	}
}

// lookupQuery answers <query>.query[.<dc>] names like a service, from the
// prepared query's results: SRV targets name the datacenter that answered
// (a failover one, maybe), and the query's DNS TTL wins over service_ttl.
func (s *Server) lookupQuery(r *response, qname string, qtype uint16, pq query, domain string, edns bool, level int) outcome {
	qc, ok := s.cat.(QueryCatalog)
	if !ok {
		return notFound
	}
	insts, qa, err := qc.PreparedQuery(r.ctx, s.datacenter(pq), pq.service, r.insts[:0])
	if insts != nil {
		r.insts = insts
	}
	if err != nil {
		s.log.Debug("prepared query lookup", zap.String("query", pq.service), zap.Error(err))
		return catalogOutcome(err)
	}
	insts = s.healthy(insts)
	if len(insts) == 0 {
		return notFound
	}
	dc := cmp.Or(insts[0].Node.Datacenter, s.datacenter(pq))
	s.translateWAN(dc, insts)
	order := r.shuffled(len(insts))
	if qa.Ordered {
		slices.Sort(order) // nearest first, as the query sorted them
	}
	ttl := s.ttls.lookup(insts[0].Service)
	if qa.TTL >= 0 {
		ttl = uint32(qa.TTL / time.Second)
	}
	if qtype == dns.TypeSRV {
		s.serviceSRV(r, qname, dc, domain, insts, order, ttl, edns, level)
	} else {
		s.serviceAddrs(r, qname, qtype, insts, order, ttl, edns, level)
	}
	if len(r.answer) == 0 {
		return noData
	}
	return found
}
