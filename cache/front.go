package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// Front limits.
const (
	// rotations is how many differently shuffled packings of one answer
	// are kept; hits cycle through them so clients still see the order
	// vary.
	rotations = 4
	// wireShards spreads packed answers over copy-on-write maps, so an
	// insert copies only a small map and reads take no lock at all.
	wireShards = 256
	// maxSlow bounds queries on the full path at once (each may wait for a
	// server); beyond it queries are dropped and the client retries.
	maxSlow = 4096
	// maxWireEntries bounds packed answers; past it a shard is cleared
	// (they are rebuilt from the catalog on the next ask).
	maxWireEntries = 50000
	// readSize is the largest query read; EDNS options can pass 512.
	readSize = 4096
	// maxReaders bounds SO_REUSEPORT sockets: beyond the core count they
	// only add contention.
	maxReaders = 8
	// socketBuffer is the kernel buffer asked for each UDP socket, so
	// bursts queue rather than drop.
	socketBuffer = 4 << 20
)

// FrontConfig configures a Front.
type FrontConfig struct {
	// Addr is the DNS host:port, bound for UDP (readers sockets) and TCP.
	Addr string
	// Readers is the number of UDP sockets, each read by a goroutine
	// sleeping in recvfrom; 0 means one per CPU the process may run on,
	// at most maxReaders.
	Readers int
	// LimitTCP, if set, wraps the TCP listener (the agent's connection
	// caps); miekg/dns's own read (2 s) and idle (8 s) timeouts apply.
	LimitTCP func(net.Listener) net.Listener
}

// Front serves the DNS port of a client agent: UDP with the wire-level
// cache, TCP straight through handler.
type Front struct {
	cfg     FrontConfig
	handler dns.Handler
	cat     *Catalog
	log     *zap.Logger
	seed    maphash.Seed

	shards [wireShards]wireShard
	nwire  atomic.Int64
	slow   chan struct{}

	conns   []*udpSock
	readers []*reader
	tcp     *dns.Server
	udpAddr net.Addr
	tcpAddr net.Addr

	wg     sync.WaitGroup
	closed atomic.Bool
}

type wireShard struct {
	mu sync.Mutex // writers only
	m  atomic.Pointer[map[uint64]*wireEntry]
}

// wireEntry is an immutable set of packed answers to one question.
type wireEntry struct {
	key      []byte
	name     []byte // the question name as first asked (letter case kept)
	caseFree bool
	deps     []*entry
	vers     []uint64
	resps    [][]byte
	// want is how many packings make the entry complete: rotations, or
	// 1 for an answer with a single record (every shuffle is the same).
	want int
}

type reader struct {
	hits atomic.Uint64
	_    [56]byte // keep readers' counters on their own cache lines
}

// NewFront returns a Front over handler (the resolver) and cat (whose
// entries the packed answers are tied to).
func NewFront(cfg FrontConfig, handler dns.Handler, cat *Catalog, logger *zap.Logger) (*Front, error) {
	if handler == nil || cat == nil {
		return nil, errors.New("cache: front needs a handler and a catalog")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("cache: front addr %q: %w", cfg.Addr, err)
	}
	if cfg.Readers <= 0 {
		cfg.Readers = min(runtime.NumCPU(), maxReaders)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	f := &Front{cfg: cfg, handler: handler, cat: cat, log: logger, seed: maphash.MakeSeed(), slow: make(chan struct{}, maxSlow)}
	for i := range f.shards {
		m := map[uint64]*wireEntry{}
		f.shards[i].m.Store(&m)
	}
	for range cfg.Readers {
		f.readers = append(f.readers, &reader{})
	}
	cat.addHitSource(f.wireHits)
	return f, nil
}

func (f *Front) wireHits() uint64 {
	var n uint64
	for _, r := range f.readers {
		n += r.hits.Load()
	}
	return n
}

// Start binds TCP, then the UDP sockets on the same port, and serves until
// Close. When it returns nil the port answers.
func (f *Front) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", f.cfg.Addr)
	if err != nil {
		return fmt.Errorf("cache: listen tcp %s: %w", f.cfg.Addr, err)
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return fmt.Errorf("cache: tcp address %s: %w", ln.Addr(), err)
	}
	for i := 0; i < f.cfg.Readers; i++ {
		u, err := listenUDP(bound)
		if err != nil {
			ln.Close()
			for _, c := range f.conns {
				c.close()
			}
			return fmt.Errorf("cache: listen udp %s: %w", bound, err)
		}
		f.conns = append(f.conns, u)
	}
	f.udpAddr, f.tcpAddr = f.conns[0].local, ln.Addr()
	started := make(chan struct{})
	if f.cfg.LimitTCP != nil {
		ln = f.cfg.LimitTCP(ln)
	}
	f.tcp = &dns.Server{Listener: ln, Handler: f.handler, NotifyStartedFunc: func() { close(started) }}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := f.tcp.ActivateAndServe(); err != nil {
			f.log.Error("dns tcp stopped", zap.Error(err))
		}
	}()
	<-started
	for i, c := range f.conns {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serveUDP(c, f.readers[i])
		}()
	}
	f.log.Info("dns listening", zap.Stringer("udp", f.udpAddr), zap.Stringer("tcp", f.tcpAddr), zap.Int("udp_readers", len(f.conns)))
	return nil
}

// Addr returns the bound UDP and TCP addresses.
func (f *Front) Addr() (udp, tcp net.Addr) { return f.udpAddr, f.tcpAddr }

// Close stops the sockets and waits for every query in flight.
func (f *Front) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if f.tcp != nil {
		errs = append(errs, f.tcp.Shutdown())
	}
	for _, c := range f.conns {
		c.shutdown()
	}
	f.wg.Wait()
	for _, c := range f.conns {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

func (f *Front) serveUDP(c *udpSock, r *reader) {
	buf := make([]byte, readSize)
	out := make([]byte, 0, readSize)
	var keyBuf [maxKeyLen]byte
	var q question
	var turn uint32
	var from peer
	for !f.closed.Load() {
		n, err := c.recv(buf, &from)
		if err != nil || n == 0 {
			continue // read timeout, shutdown, EINTR or ICMP-induced: the loop ends on Close
		}
		p := buf[:n]
		turn++
		if parseQuery(p, &q, &keyBuf) {
			if resp, ok := f.lookup(p, &q, turn, out[:0]); ok {
				r.hits.Add(1)
				_ = c.send(resp, &from)
				continue
			}
		}
		select {
		case f.slow <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		pkt := bytes.Clone(p)
		to := from
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.slow }()
			f.serveSlow(c, &to, pkt)
		}()
	}
}

func (f *Front) shardFor(h uint64) *wireShard { return &f.shards[h%wireShards] }

// lookup answers p from a packed entry into out, if one is valid.
func (f *Front) lookup(p []byte, q *question, turn uint32, out []byte) ([]byte, bool) {
	h := maphash.Bytes(f.seed, q.key)
	we := (*f.shardFor(h).m.Load())[h]
	if we == nil || !bytes.Equal(we.key, q.key) || len(we.resps) < we.want {
		return nil, false
	}
	name := p[headerLen:q.nameEnd]
	sameCase := bytes.Equal(name, we.name)
	if !sameCase && !we.caseFree {
		return nil, false
	}
	now := f.cat.clock.Load()
	outage := f.cat.outage.Load()
	for i, d := range we.deps {
		if d.version.Load() != we.vers[i] {
			return nil, false
		}
		if v := d.val.Load(); v == nil || v.expires != 0 && now > v.expires {
			return nil, false // a timed answer (other datacenter) past its TTL
		}
		if outage || d.stale.Load() {
			if !f.cat.usable(d, d.val.Load(), now) {
				return nil, false
			}
			f.cat.metrics.staleHits.Inc()
		}
		if now-d.lastHit.Load() > int64(clockTick) {
			d.lastHit.Store(now)
		}
	}
	resp := we.resps[0]
	if we.want == rotations {
		resp = we.resps[turn%rotations]
	}
	out = append(out, resp...)
	out[0], out[1] = p[0], p[1]
	out[2] = out[2]&^flagRD | p[2]&flagRD
	out[3] = out[3]&^flagCD | p[3]&flagCD
	if !sameCase {
		copy(out[headerLen:], name)
	}
	return out, true
}

// serveSlow answers one query through the resolver, like miekg/dns's
// server would, and keeps the packed answer when it may be reused.
func (f *Front) serveSlow(c *udpSock, to *peer, p []byte) {
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
	fast := parseQuery(p, &q, &keyBuf)
	var rec *recorder
	if fast {
		rec = f.cat.startRecording()
	}
	f.handler.ServeDNS(w, req)
	if !fast {
		return
	}
	f.cat.stopRecording(rec)
	f.store(p, &q, w.written, rec)
}

// store keeps resp as a packing of q's answer if it can be reused.
func (f *Front) store(p []byte, q *question, resp []byte, rec *recorder) {
	if len(resp) < q.nameEnd+4 || rec.over || len(rec.deps) == 0 {
		return
	}
	if resp[3]&0x0F != dns.RcodeSuccess || resp[2]&flagTC != 0 || binary.BigEndian.Uint16(resp[6:]) == 0 {
		return // only positive, whole answers; negative ones carry a timed SOA
	}
	if !bytes.Equal(resp[headerLen:q.nameEnd+4], p[headerLen:q.nameEnd+4]) {
		return
	}
	for i, d := range rec.deps {
		if v := d.val.Load(); v == nil || v.empty() || d.removed.Load() || d.version.Load() != rec.vers[i] {
			return // changed while we answered
		}
	}
	h := maphash.Bytes(f.seed, q.key)
	s := f.shardFor(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	cur := old[h]
	ne := &wireEntry{
		key:      bytes.Clone(q.key),
		name:     bytes.Clone(p[headerLen:q.nameEnd]),
		caseFree: caseFree(resp, q.nameEnd),
		deps:     rec.deps,
		vers:     rec.vers,
		want:     rotations,
	}
	// One answer record and at most one additional (EDNS's OPT): nothing
	// for a shuffle to reorder, so one packing serves every turn.
	if binary.BigEndian.Uint16(resp[6:]) == 1 && binary.BigEndian.Uint16(resp[8:]) == 0 && binary.BigEndian.Uint16(resp[10:]) <= 1 {
		ne.want = 1
	}
	if cur != nil && bytes.Equal(cur.key, q.key) && sameDeps(cur, rec) {
		if len(cur.resps) >= cur.want {
			return
		}
		ne.name, ne.caseFree = cur.name, cur.caseFree && ne.caseFree
		ne.resps = append(append(ne.resps, cur.resps...), bytes.Clone(resp))
	} else {
		ne.resps = [][]byte{bytes.Clone(resp)}
	}
	m := make(map[uint64]*wireEntry, len(old)+1)
	if f.nwire.Load() < maxWireEntries {
		for k, v := range old {
			m[k] = v
		}
	} else {
		f.nwire.Add(-int64(len(old)))
	}
	if _, ok := m[h]; !ok {
		f.nwire.Add(1)
	}
	m[h] = ne
	s.m.Store(&m)
}

func sameDeps(we *wireEntry, rec *recorder) bool {
	if len(we.deps) != len(rec.deps) {
		return false
	}
	for i := range we.deps {
		if we.deps[i] != rec.deps[i] || we.vers[i] != rec.vers[i] {
			return false
		}
	}
	return true
}

// udpWriter is the dns.ResponseWriter of the full path: it sends and
// keeps a copy of what it sent.
type udpWriter struct {
	conn    *udpSock
	to      *peer
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
	w.written = bytes.Clone(b)
	if err := w.conn.send(b, w.to); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
