package resolver

import (
	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// recurse passes a query for a name outside our domain to the recursors in
// order. An answer other than NOERROR or NXDOMAIN, or no answer within
// recursor_timeout, moves on to the next; when all fail the client gets
// SERVFAIL. Without recursors the query is REFUSED at once.
func (s *Server) recurse(w dns.ResponseWriter, req *dns.Msg) int {
	if len(s.recursors) == 0 {
		return s.replyError(w, req, dns.RcodeRefused)
	}
	s.metrics.recursed.Inc()
	c := s.udpClient
	if isTCP(w) {
		c = s.tcpClient
	}
	for _, addr := range s.recursors {
		resp, _, err := c.ExchangeContext(s.ctx, req, addr)
		if resp != nil && resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			s.log.Debug("recursor answered with an error", zap.String("recursor", addr),
				zap.String("rcode", dns.RcodeToString[resp.Rcode]))
			continue
		}
		if err == nil || (resp != nil && resp.Truncated) {
			resp.Compress = !s.cfg.DisableCompression
			if err := w.WriteMsg(resp); err != nil {
				s.log.Debug("write recursed answer", zap.Error(err))
			}
			return resp.Rcode
		}
		s.log.Debug("recursor failed", zap.String("recursor", addr), zap.Error(err))
	}
	s.log.Warn("all recursors failed", zap.String("name", req.Question[0].Name))
	return s.replyError(w, req, dns.RcodeServerFailure)
}

// recurseA asks the recursors for the A records of name (to follow a
// host-name service address). Nil when there are no recursors or all fail.
func (s *Server) recurseA(name string) []dns.RR {
	if len(s.recursors) == 0 {
		return nil
	}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	for _, addr := range s.recursors {
		resp, _, err := s.udpClient.ExchangeContext(s.ctx, m, addr)
		if err == nil {
			return resp.Answer
		}
		s.log.Debug("recursor failed for CNAME target", zap.String("recursor", addr), zap.Error(err))
	}
	return nil
}
