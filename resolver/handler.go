package resolver

import (
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// outcome of a lookup inside our domain.
type outcome uint8

const (
	found    outcome = iota // answer section filled
	noData                  // name exists, not with this type: NOERROR + SOA
	notFound                // NXDOMAIN + SOA
	failed                  // catalog error: SERVFAIL
)

// ServeDNS answers one query. It implements dns.Handler, so tests and
// other servers can drive the resolver without sockets.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.serveDNS(s.ctx, w, req)
}

// serveDNS answers one query; ctx reaches the Catalog (on the UDP path it
// carries the set of Deps the answer is built from, see packed.go).
func (s *Server) serveDNS(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	rcode := s.serve(ctx, w, req, start)
	s.metrics.count(rcode)
	s.metrics.latency.Observe(time.Since(start).Seconds())
}

// isTCP tells the transport of a ResponseWriter.
func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

func (s *Server) serve(ctx context.Context, w dns.ResponseWriter, req *dns.Msg, now time.Time) int {
	if req.Response {
		return dns.RcodeFormatError // never answer answers (loops, reflection)
	}
	if len(req.Question) != 1 {
		return s.replyError(w, req, dns.RcodeFormatError)
	}
	if req.Opcode != dns.OpcodeQuery {
		return s.replyError(w, req, dns.RcodeNotImplemented)
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name) // allocates only if there are capitals
	if !dns.IsFqdn(name) {
		name = dns.Fqdn(name)
	}
	pq := s.names.parse(name, q.Qtype)
	switch pq.kind {
	case kindForeign:
		return s.recurse(w, req)
	case kindPTR:
		if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
			return s.recurse(w, req)
		}
	}

	r := s.pool.Get().(*response)
	defer func() {
		r.reset()
		s.pool.Put(r)
	}()
	r.ctx = ctx
	m := &r.msg
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	m.Authoritative = true
	m.RecursionAvailable = len(s.recursors) > 0
	m.Compress = !s.cfg.DisableCompression
	r.question[0] = q
	m.Question = r.question[:]
	edns := req.IsEdns0()
	domain := s.names.domain
	if pq.alt {
		domain = s.names.altDomain
	}

	var out outcome
	switch {
	case pq.kind == kindPTR:
		out = s.lookupPTR(r, &q, name, pq)
		if out == notFound && len(s.recursors) > 0 {
			return s.recurse(w, req)
		}
		domain = s.names.domain
	case q.Qtype == dns.TypeSOA:
		r.answer = append(r.answer, s.makeSOA(r, domain, now))
		r.ns, r.extra = s.nameservers(r, domain, r.ns, r.extra)
		out = found
	case q.Qtype == dns.TypeNS:
		r.answer, r.extra = s.nameservers(r, domain, r.answer, r.extra)
		out = found
		if len(r.answer) == 0 {
			out = noData
		}
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		return s.replyError(w, req, dns.RcodeNotImplemented)
	default:
		out = s.lookup(r, q.Name, q.Qtype, pq, domain, edns != nil, maxRecursionLevel)
	}

	m.Rcode = dns.RcodeSuccess
	switch out {
	case notFound:
		m.Rcode = dns.RcodeNameError
		r.answer = r.answer[:0]
		r.ns = append(r.ns, s.makeSOA(r, domain, now))
	case noData:
		r.ns = append(r.ns, s.makeSOA(r, domain, now))
	case failed:
		m.Rcode = dns.RcodeServerFailure
		r.answer, r.extra = r.answer[:0], r.extra[:0]
	}
	m.Answer, m.Ns, m.Extra = r.answer, r.ns, r.extra
	if edns != nil {
		r.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		r.opt.SetUDPSize(edns.UDPSize())
		m.Extra = append(m.Extra, &r.opt)
	}
	packed, err := s.fit(r, edns, isTCP(w), q.Qtype)
	if err != nil {
		s.log.Warn("pack answer", zap.String("name", q.Name), zap.Error(err))
		return s.replyError(w, req, dns.RcodeServerFailure)
	}
	if _, err := w.Write(packed); err != nil {
		s.log.Debug("write answer", zap.Error(err))
	}
	return m.Rcode
}

// replyError answers with an empty message carrying rcode.
func (s *Server) replyError(w dns.ResponseWriter, req *dns.Msg, rcode int) int {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	if len(req.Question) > 1 {
		m.Question = m.Question[:1]
	}
	m.RecursionAvailable = len(s.recursors) > 0
	if edns := req.IsEdns0(); edns != nil {
		m.SetEdns0(edns.UDPSize(), false)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write error answer", zap.Error(err))
	}
	return rcode
}

// makeSOA returns the SOA of domain; the serial is the current Unix time,
// as Consul's.
func (s *Server) makeSOA(r *response, domain string, now time.Time) dns.RR {
	soa := &r.soa
	if r.soa.Hdr.Rrtype != 0 { // already used in this answer
		soa = new(dns.SOA)
	}
	*soa = s.soa
	if domain != s.names.domain {
		*soa = s.altSOA
	}
	soa.Serial = uint32(now.Unix())
	return soa
}

// datacenter returns the datacenter a query is for.
func (s *Server) datacenter(pq query) string {
	if pq.dc != "" {
		return pq.dc
	}
	return s.defaultDC
}

// lookup fills r with the answer for a name in our domain.
func (s *Server) lookup(r *response, qname string, qtype uint16, pq query, domain string, edns bool, level int) outcome {
	switch pq.kind {
	case kindApex:
		return noData
	case kindService:
		return s.lookupService(r, qname, qtype, pq, domain, edns, level)
	case kindNode:
		return s.lookupNode(r, qname, qtype, pq, level)
	case kindAddr:
		rr := r.ipRR(qname, pq.addr, s.nodeTTL)
		if (pq.addr.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY)) ||
			(!pq.addr.Is4() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY)) {
			r.answer = append(r.answer, rr)
			return found
		}
		r.extra = append(r.extra, rr) // Consul puts it in additional
		return noData
	}
	return notFound
}

func catalogOutcome(err error) outcome {
	if errors.Is(err, ErrNoSuchDatacenter) {
		return notFound
	}
	return failed
}

// healthy drops instances the query must not return, in place.
func (s *Server) healthy(insts []Instance) []Instance {
	n := 0
	for i := range insts {
		switch insts[i].Status {
		case StatusCritical:
			continue
		case StatusPassing:
		default:
			if s.cfg.OnlyPassing {
				continue
			}
		}
		if n != i { // copy only once something was dropped
			insts[n] = insts[i]
		}
		n++
	}
	clear(insts[n:])
	return insts[:n]
}

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

// lookupNode answers <node>.node names: A/AAAA (or CNAME) from the node
// address, TXT from node meta.
func (s *Server) lookupNode(r *response, qname string, qtype uint16, pq query, level int) outcome {
	n, err := s.cat.Node(r.ctx, s.datacenter(pq), pq.node)
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
		r.answer = s.nodeAddr(r, r.answer, qname, qtype, n.Address, s.nodeTTL, level)
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
