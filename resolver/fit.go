package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// fit packs r.msg, trimming it the way Consul does when it is too big for
// the transport: over UDP at most min(udp_answer_limit, 8) answers for
// clients without EDNS0, and never more than 512 bytes (or the EDNS0 size)
// minus the UDP header; over TCP at most 64 KiB. Additional records follow
// the SRV answers that remain. Trimmed UDP answers carry TC only with
// enable_truncate, as in Consul.
func (s *Server) fit(r *response, edns *dns.OPT, tcp bool, qtype uint16) ([]byte, error) {
	m := &r.msg
	maxSize := maxTCPSize
	maxAnswers := len(m.Answer)
	if !tcp {
		maxSize = defaultUDPSize
		if edns != nil && int(edns.UDPSize()) > maxSize {
			maxSize = int(edns.UDPSize())
		}
		maxSize = min(maxSize, maxUDPSize) - 8 // the UDP header
		if maxSize == defaultUDPSize-8 {
			maxAnswers = min(maxAnswers, maxUDPAnswerLimit, s.cfg.UDPAnswerLimit)
		}
	} else {
		// More than this never fits in 64 KiB; cut before measuring.
		limit := 4096
		if qtype == dns.TypeSRV {
			limit = 1024
		}
		maxAnswers = min(maxAnswers, limit)
	}

	numAnswers := len(m.Answer)
	if maxAnswers == numAnswers {
		// The common case: pack once and check the size. Small answers go
		// out uncompressed: compression cannot matter below 512 bytes and
		// costs a map per answer; larger ones are packed again compressed.
		compress := m.Compress
		m.Compress = false
		packed, err := s.pack(r)
		m.Compress = compress
		if err != nil {
			return nil, err
		}
		if compress && len(packed) > defaultUDPSize {
			if packed, err = s.pack(r); err != nil {
				return nil, err
			}
		}
		if len(packed) <= maxSize || len(m.Answer) <= 1 {
			return packed, nil
		}
	}

	all := m.Extra
	compress := m.Compress
	if !tcp && maxSize == defaultUDPSize-8 {
		// Measure uncompressed for plain DNS clients, so the answer fits
		// even through middleboxes that decompress (Consul's choice).
		m.Compress = false
	}
	m.Answer = m.Answer[:maxAnswers]
	s.syncExtra(m, all)
	for len(m.Answer) > 1 && m.Len() > maxSize {
		m.Ns = nil // the SOA goes first
		if m.Len()-maxSize > 100 {
			m.Answer = m.Answer[:s.bestCut(m, all, maxSize)]
		} else {
			m.Answer = m.Answer[:len(m.Answer)-1]
		}
		s.syncExtra(m, all)
	}
	m.Compress = compress
	if len(m.Answer) < numAnswers && !tcp && s.cfg.EnableTruncate {
		m.Truncated = true
	}
	return s.pack(r)
}

// pack packs r.msg into r's reusable buffer.
func (s *Server) pack(r *response) ([]byte, error) {
	packed, err := r.msg.PackBuffer(r.buf[:cap(r.buf)])
	if err != nil {
		return nil, err
	}
	if cap(packed) > cap(r.buf) {
		r.buf = packed[:cap(packed)]
	}
	return packed, nil
}

// bestCut binary-searches the number of answers that fits in maxSize.
func (s *Server) bestCut(m *dns.Msg, extra []dns.RR, maxSize int) int {
	all := m.Answer
	lo, hi := 1, len(all) // lo fits (or is the minimum), hi does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		m.Answer = all[:mid]
		s.syncExtra(m, extra)
		if m.Len() <= maxSize {
			lo = mid
		} else {
			hi = mid
		}
	}
	m.Answer = all
	return lo
}

// syncExtra keeps only the additional records that belong to a remaining
// SRV target (following CNAMEs), plus the OPT record. It filters in a copy
// of the original additional section, so it can be called repeatedly while
// answers shrink.
func (s *Server) syncExtra(m *dns.Msg, extra []dns.RR) {
	if len(extra) == 0 {
		return
	}
	var targets []string
	for _, rr := range m.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			targets = append(targets, srv.Target)
		}
	}
	if len(targets) == 0 {
		return // extra is not about SRV targets (e.g. node meta TXT)
	}
	kept := make([]dns.RR, 0, len(extra))
	for i := 0; i < len(targets); i++ {
		for _, rr := range extra {
			if !strings.EqualFold(rr.Header().Name, targets[i]) {
				continue
			}
			if contains(kept, rr) {
				continue
			}
			kept = append(kept, rr)
			if c, ok := rr.(*dns.CNAME); ok {
				targets = append(targets, c.Target)
			}
		}
	}
	for _, rr := range extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			kept = append(kept, rr)
		}
	}
	m.Extra = kept
}

func contains(rrs []dns.RR, rr dns.RR) bool {
	for _, o := range rrs {
		if o == rr {
			return true
		}
	}
	return false
}
