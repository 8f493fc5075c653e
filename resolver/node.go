package resolver

import (
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// lookupNode answers <node>.node names: A/AAAA (or CNAME) from the node
// address, TXT from node meta.
func (s *Server) lookupNode(r *response, qname string, qtype uint16, pq query, level int) outcome {
	dc := s.datacenter(pq)
	n, err := s.cat.Node(r.ctx, dc, pq.node)
	if err != nil {
		s.log.Debug("catalog node lookup", zap.String("node", pq.node), zap.Error(err))
		return catalogOutcome(err)
	}
	if n == nil {
		return notFound
	}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeTXT:
	default:
		return noData
	}
	if qtype != dns.TypeTXT {
		addr := n.Address
		if s.cfg.TranslateWANAddrs && n.WANAddress != "" && !strings.EqualFold(dc, s.defaultDC) {
			addr = n.WANAddress
		}
		r.answer = s.nodeAddr(r, r.answer, qname, qtype, addr, s.nodeTTL, level)
	}
	switch {
	case qtype == dns.TypeTXT || qtype == dns.TypeANY:
		r.answer = appendMetaTXT(r.answer, qname, n.Meta, s.nodeTTL)
	case s.cfg.NodeMetaTXT && len(r.answer) > 0:
		r.extra = appendMetaTXT(r.extra, qname, n.Meta, s.nodeTTL)
	}
	if len(r.answer) == 0 {
		return noData
	}
	return found
}

// nodeAddr appends the address records of a node named name.
func (s *Server) nodeAddr(r *response, dst []dns.RR, name string, qtype uint16, addr string, ttl uint32, level int) []dns.RR {
	ip, ok := parseIP(addr)
	if !ok {
		if addr == "" {
			return dst
		}
		return append(dst, s.cnameChain(r.ctx, name, addr, ttl, false, true, level)...)
	}
	if !wantsAddr(qtype, ip) {
		return dst
	}
	return append(dst, r.ipRR(name, ip, ttl))
}

// appendMetaTXT appends one TXT record per meta pair: "key=value" encoded
// as RFC 1464, or the bare value for keys starting with "rfc1035-".
func appendMetaTXT(dst []dns.RR, name string, meta map[string]string, ttl uint32) []dns.RR {
	for k, v := range meta {
		txt := v
		if len(k) < 8 || !strings.EqualFold(k[:8], "rfc1035-") {
			txt = rfc1464(k, v)
		}
		dst = append(dst, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: []string{txt},
		})
	}
	return dst
}

// rfc1464 encodes key=value: backquote quotes "`", "=" and the key's
// leading and trailing spaces.
func rfc1464(key, value string) string {
	var b strings.Builder
	lead := len(key) - len(strings.TrimLeft(key, " "))
	trail := 0
	if lead < len(key) {
		trail = len(key) - len(strings.TrimRight(key, " "))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '`' || c == '=':
			b.WriteByte('`')
		case c == ' ' && (i < lead || i >= len(key)-trail):
			b.WriteByte('`')
		}
		b.WriteByte(c)
	}
	b.WriteByte('=')
	b.WriteString(strings.ReplaceAll(value, "`", "``"))
	return b.String()
}

// nameservers returns NS records for up to three servers (the instances
// of service "consul" in the local datacenter) and their addresses.
func (s *Server) nameservers(r *response, domain string, ns, extra []dns.RR) ([]dns.RR, []dns.RR) {
	insts, err := s.cat.ServiceNodes(r.ctx, s.defaultDC, "consul", "", s.cfg.OnlyPassing, nil)
	if err != nil {
		s.log.Warn("list servers for NS", zap.Error(err))
		return ns, extra
	}
	insts = s.healthy(insts)
	rand.Shuffle(len(insts), func(i, j int) { insts[i], insts[j] = insts[j], insts[i] })
	added := 0
	for i := range insts {
		n := &insts[i].Node
		if !validNodeLabel(n.Name) {
			continue
		}
		dc := n.Datacenter
		if dc == "" {
			dc = s.defaultDC
		}
		fqdn := strings.ToLower(nodeFQDN(n.Name, dc, domain))
		ns = append(ns, &dns.NS{
			Hdr: dns.RR_Header{Name: domain, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: s.nodeTTL},
			Ns:  fqdn,
		})
		extra = s.nodeAddr(r, extra, fqdn, dns.TypeANY, n.Address, s.nodeTTL, maxRecursionLevel)
		if added++; added == maxNameservers {
			break
		}
	}
	return ns, extra
}

// validNodeLabel: Consul skips servers whose names are not DNS labels.
func validNodeLabel(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// lookupPTR answers reverse names: a node address first, then a service
// address, in the local datacenter.
func (s *Server) lookupPTR(r *response, q *dns.Question, _ string, pq query) outcome {
	if !pq.addr.IsValid() {
		return notFound
	}
	ctx := r.ctx
	nodes, err := s.cat.Nodes(ctx, s.defaultDC)
	if err != nil {
		return catalogOutcome(err)
	}
	ptr := func(target string) {
		r.answer = append(r.answer, &dns.PTR{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 0},
			Ptr: target,
		})
	}
	for i := range nodes {
		if a, ok := parseIP(nodes[i].Address); ok && a.Unmap() == pq.addr.Unmap() {
			dc := nodes[i].Datacenter
			if dc == "" {
				dc = s.defaultDC
			}
			ptr(nodeFQDN(nodes[i].Name, dc, s.names.domain))
			return found
		}
	}
	insts, err := s.cat.ServicesByAddress(ctx, s.defaultDC, pq.addr.String())
	if err != nil {
		return catalogOutcome(err)
	}
	for i := range insts {
		dc := insts[i].Node.Datacenter
		if dc == "" {
			dc = s.defaultDC
		}
		ptr(insts[i].Service + ".service." + dc + "." + s.names.domain)
		return found
	}
	return notFound
}
