package resolver

import (
	"context"
	"errors"
	"net"
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

// serve answers req, or hands it to the recursors when the name is not
// ours, and returns the rcode sent.
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
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR { // (a PTR name here is asked PTR or ANY)
		return s.replyError(w, req, dns.RcodeNotImplemented)
	}

	r := s.pool.Get().(*response)
	defer func() {
		r.reset()
		s.pool.Put(r)
	}()
	r.ctx = ctx
	s.startReply(r, req, q)
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
	default:
		out = s.lookup(r, q.Name, q.Qtype, pq, domain, edns != nil, maxRecursionLevel)
	}
	return s.finishReply(w, req, r, out, domain, edns, now)
}

// startReply fills r's header and question from req.
func (s *Server) startReply(r *response, req *dns.Msg, q dns.Question) {
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
}

// finishReply sets the rcode for out (with the SOA of domain for negative
// answers), adds the OPT record when the query had one, fits the message
// to the transport and writes it; it returns the rcode sent.
func (s *Server) finishReply(w dns.ResponseWriter, req *dns.Msg, r *response, out outcome, domain string, edns *dns.OPT, now time.Time) int {
	m := &r.msg
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
	q := r.question[0]
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
	case kindQuery:
		return s.lookupQuery(r, qname, qtype, pq, domain, edns, level)
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
