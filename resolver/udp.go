package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"

	"github.com/miekg/dns"
)

// serveUDP reads one socket until Close. A question answered before is
// answered from packed bytes right here, without allocating; anything else
// goes the full path (ServeDNS) in its own goroutine, as miekg/dns's
// server would run it.
func (s *Server) serveUDP(c *udpSock, r *reader) {
	buf := make([]byte, udpReadSize)
	out := make([]byte, 0, udpReadSize)
	var keyBuf [maxKeyLen]byte
	var q question
	var turn uint32
	var from peer
	for !s.closed.Load() {
		n, err := c.recv(buf, &from)
		if err != nil || n == 0 {
			continue // read timeout, shutdown, EINTR or ICMP-induced: the loop ends on Close
		}
		p := buf[:n]
		if s.packed != nil && parseQuery(p, &q, &keyBuf) {
			turn++
			if resp, ok := s.packed.lookup(p, &q, turn, out[:0]); ok {
				r.hits.Add(1)
				_ = c.send(resp, &from)
				continue
			}
		}
		select {
		case s.inFlight <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		pkt := bytes.Clone(p)
		to := from
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.inFlight }()
			s.serveSlow(c, &to, pkt)
		}()
	}
}

// serveSlow answers one query through ServeDNS, like miekg/dns's server
// would (same accept rules, same FORMERR/NOTIMP answers), and keeps the
// packed answer when it may be reused.
func (s *Server) serveSlow(c *udpSock, to *peer, p []byte) {
	if len(p) < headerLen {
		return // miekg/dns drops what has no header
	}
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(p[0:]),
		Bits:    binary.BigEndian.Uint16(p[2:]),
		Qdcount: binary.BigEndian.Uint16(p[4:]),
		Ancount: binary.BigEndian.Uint16(p[6:]),
		Nscount: binary.BigEndian.Uint16(p[8:]),
		Arcount: binary.BigEndian.Uint16(p[10:]),
	}
	w := &udpWriter{conn: c, to: to}
	req := new(dns.Msg)
	action := dns.DefaultMsgAcceptFunc(dh)
	if action == dns.MsgAccept {
		if err := req.Unpack(p); err != nil {
			action = dns.MsgReject
		}
	}
	switch action {
	case dns.MsgIgnore:
		return
	case dns.MsgReject, dns.MsgRejectNotImplemented:
		req = new(dns.Msg)
		req.Id = dh.Id
		req.Opcode = int(dh.Bits>>11) & 0xF
		opcode := req.Opcode
		req.SetRcodeFormatError(req)
		req.Zero = false
		if action == dns.MsgRejectNotImplemented {
			req.Opcode = opcode
			req.Rcode = dns.RcodeNotImplemented
		}
		req.Ns, req.Answer, req.Extra = nil, nil, nil
		_ = w.WriteMsg(req)
		return
	}

	var keyBuf [maxKeyLen]byte
	var q question
	if s.packed == nil || !parseQuery(p, &q, &keyBuf) {
		s.serveDNS(s.ctx, w, req)
		return
	}
	rec := &depSet{}
	w.keep = true
	s.serveDNS(context.WithValue(s.ctx, depSetKey{}, rec), w, req)
	s.packed.store(p, &q, w.written, rec)
}

// udpWriter is the dns.ResponseWriter of the full path: it sends, and keeps
// a copy of what it sent when the answer may be packed.
type udpWriter struct {
	conn    *udpSock
	to      *peer
	keep    bool
	written []byte
}

func (w *udpWriter) LocalAddr() net.Addr { return w.conn.local }
func (w *udpWriter) RemoteAddr() net.Addr {
	return net.UDPAddrFromAddrPort(w.to.addrPort())
}
func (w *udpWriter) Network() string { return "udp" }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) {
	if w.keep {
		w.written = bytes.Clone(b)
	}
	if err := w.conn.send(b, w.to); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
