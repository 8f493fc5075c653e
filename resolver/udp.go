package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"time"

	"github.com/miekg/dns"
)

// A UDP reader that sleeps in recvmmsg (udp_linux.go) never otherwise
// enters the scheduler, so its P's schedtick stays put; after 10 ms of
// that Go's sysmon treats it as a long-running goroutine, takes its P
// away in the middle of a read (an exitsyscall slow path and extra thread
// hand-offs for the next packet) and, having retaken a P, drops back to
// waking every 20 µs. Measured at a steady 20k QPS (perf, client agent on
// one core): sysmon was 16% of the agent's CPU, mostly its nanosleep
// wake-ups. So the reader calls runtime.Gosched once yieldAfter has
// passed and it made at least yieldReads reads since the last call:
// schedtick moves well inside sysmon's 10 ms and sysmon backs off to its
// 10 ms sleep. Gosched wakes an idle P's thread, so it is kept rare (at
// most 250 a second, and never more often than every yieldReads reads);
// yielding every 16 reads instead cost 4% of throughput at saturation.
const (
	yieldAfter = 4 * time.Millisecond
	yieldReads = 8
)

// serveUDP reads one socket until Close. A question answered before is
// answered from packed bytes right here, without allocating; anything else
// goes the full path (ServeDNS) in its own goroutine, as miekg/dns's
// server would run it.
func (s *Server) serveUDP(c *udpSock, r *reader) {
	b := newUDPBatch(c.batchLen())
	var keyBuf [maxKeyLen]byte
	var q question
	var turn uint32
	lastYield, reads := time.Now(), 0
	for !s.closed.Load() {
		if reads++; reads >= yieldReads {
			// Let the scheduler see this goroutine (see yieldAfter).
			if now := time.Now(); now.Sub(lastYield) >= yieldAfter {
				runtime.Gosched()
				lastYield, reads = now, 0
			}
		}
		n, err := c.recvBatch(b)
		if err != nil || n == 0 {
			continue // read timeout, shutdown, EINTR or ICMP-induced: the loop ends on Close
		}
		for i := range n {
			p := b.bufs[i][:b.lens[i]]
			if len(p) == 0 {
				continue
			}
			if s.packed != nil && parseQuery(p, &q, &keyBuf) {
				turn++
				if resp, ok := s.packed.lookup(p, &q, turn, b.outs[i][:0]); ok {
					r.hits.Add(1)
					c.queue(b, resp, &b.from[i])
					continue
				}
			}
			select {
			case s.inFlight <- struct{}{}:
			default:
				continue // overloaded: drop, the client retries
			}
			pkt := bytes.Clone(p)
			to := b.from[i]
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-s.inFlight }()
				s.serveSlow(c, &to, pkt)
			}()
		}
		c.flush(b)
	}
}

// udpBatch is a reader's buffers for up to udpBatchSize datagrams taken
// from its socket at once (recvmmsg on Linux's blocking sockets, one at a
// time elsewhere) and the packed answers queued for them (one sendmmsg).
// A socket read one datagram at a time gets buffers for one.
type udpBatch struct {
	bufs [udpBatchSize][]byte // query datagrams, udpReadSize each
	lens [udpBatchSize]int
	from [udpBatchSize]peer
	outs [udpBatchSize][]byte // packed answers, reused
	sys  batchSys             // the platform's syscall state
}

func newUDPBatch(n int) *udpBatch {
	b := &udpBatch{}
	for i := range n {
		b.bufs[i] = make([]byte, udpReadSize)
		b.outs[i] = make([]byte, 0, udpReadSize)
	}
	return b
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
