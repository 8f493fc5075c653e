package rpc

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/connlimit"
)

// This file owns the lifetime limits of server-port connections: the
// per-client and total caps applied on accept, idle RPC sessions, idle
// inbound raft connections, and the once-per-peer-per-minute gate on the
// log line each bad connection or stream earns.

// limitListener applies MaxConnsPerClient and MaxConns to ln.
func (s *Server) limitListener(ln net.Listener) net.Listener {
	return connlimit.Wrap(ln, connlimit.Config{
		Name:         "rpc",
		MaxPerClient: s.limits.MaxConnsPerClient,
		MaxTotal:     s.limits.MaxConns,
	}, s.logger, s.connMetrics)
}

// logPeer reports whether a warning about peer may be logged now.
func (s *Server) logPeer(addr net.Addr) bool {
	return s.peerLog.Allow(connlimit.PeerIP(addr).String())
}

// idleSessionChecks is how often, as a fraction of SessionIdleTimeout, the
// sessions are checked for idleness: a session is closed between 1 and
// 1.25 idle timeouts after its last stream.
const idleSessionChecks = 4

// idleEntry is one session as the idle sweeper sees it.
type idleEntry struct {
	sess       *yamux.Session
	lastStream atomic.Int64 // unix nanos of the last accepted stream
	log        *zap.Logger
}

// idleSweeper closes sessions that have had no open stream for
// SessionIdleTimeout. One goroutine and one ticker serve every session of
// the server (a ticker per session was 10,000 timers for 10,000 clients);
// it starts with the first session and stops at Server.Close.
type idleSweeper struct {
	mu       sync.Mutex
	sessions map[*idleEntry]struct{}
	started  bool
}

func (w *idleSweeper) add(s *Server, e *idleEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sessions == nil {
		w.sessions = make(map[*idleEntry]struct{})
	}
	w.sessions[e] = struct{}{}
	if w.started {
		return
	}
	w.started = true
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if !closed {
		go func() {
			defer s.wg.Done()
			w.run(s)
		}()
	}
}

func (w *idleSweeper) remove(e *idleEntry) {
	w.mu.Lock()
	delete(w.sessions, e)
	w.mu.Unlock()
}

// run checks every session each SessionIdleTimeout/idleSessionChecks
// until the server closes.
func (w *idleSweeper) run(s *Server) {
	idle := s.limits.SessionIdleTimeout
	t := time.NewTicker(max(idle/idleSessionChecks, time.Millisecond))
	defer t.Stop()
	var expired []*idleEntry
	for {
		select {
		case <-s.closeCh:
			return
		case now := <-t.C:
			expired = expired[:0]
			w.mu.Lock()
			for e := range w.sessions {
				if e.sess.NumStreams() > 0 {
					// Busy (a blocking query may run for minutes): the
					// idle spell starts no earlier than now.
					e.lastStream.Store(now.UnixNano())
					continue
				}
				if now.Sub(time.Unix(0, e.lastStream.Load())) >= idle {
					expired = append(expired, e)
				}
			}
			w.mu.Unlock()
			for _, e := range expired {
				s.metrics.rejected.WithLabelValues("session_idle").Inc()
				e.log.Debug("rpc: closing idle session", zap.Duration("idle", idle))
				// GoAway first: a client that opens a stream now gets a
				// clean "not sent" error (ErrRemoteGoAway) rather than a
				// reset. Close ends the session's accept loop, which
				// removes it from the sweeper.
				_ = e.sess.GoAway()
				e.sess.Close()
			}
			clear(expired)
		}
	}
}

// idleRaftConn ends an inbound raft connection once no byte arrived for
// RaftIdleTimeout: the read returns io.EOF, which raft's transport treats
// as the peer hanging up (closing without an error line).
type idleRaftConn struct {
	net.Conn
	idle    time.Duration
	onIdle  func()
	expired atomic.Bool
}

func (s *Server) newIdleRaftConn(c net.Conn) net.Conn {
	return &idleRaftConn{Conn: c, idle: s.limits.RaftIdleTimeout, onIdle: func() {
		s.metrics.rejected.WithLabelValues("raft_idle").Inc()
		s.logger.Debug("rpc: closing idle raft connection", zap.String("remote", c.RemoteAddr().String()))
	}}
}

func (c *idleRaftConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.expired.CompareAndSwap(false, true) {
			c.onIdle()
		}
		return n, io.EOF
	}
	return n, err
}

// redialLayer wraps a raft.StreamLayer so each connection it dials
// replaces itself with a fresh one when raft reuses it after being idle
// for half the peer's RaftIdleTimeout: raft pools connections (a vote
// request may use one idle for hours) and would otherwise fail the one
// RPC sent on a connection the peer just closed for idleness.
type redialLayer struct {
	raft.StreamLayer
	after time.Duration
}

func (l *redialLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return &redialConn{
		cur:   c,
		after: l.after,
		last:  time.Now(),
		dial:  func() (net.Conn, error) { return l.StreamLayer.Dial(address, timeout) },
	}, nil
}

// redialConn is a dialled raft connection that swaps in a new one on a
// Write after an idle spell. That is safe only at a request boundary with
// nothing left to read, which raft guarantees when no Read is in flight
// and the connection has been silent: every response was consumed (raft
// closes a connection on any read error) and a request starts with a
// Write. Deadlines set before the swap are re-applied to the new
// connection.
type redialConn struct {
	mu      sync.Mutex
	cur     net.Conn
	after   time.Duration
	last    time.Time
	reading int
	closed  bool
	rd, wd  time.Time
	dial    func() (net.Conn, error)
}

func (c *redialConn) conn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *redialConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	cur := c.cur
	c.reading++
	c.mu.Unlock()
	n, err := cur.Read(p)
	c.mu.Lock()
	c.reading--
	c.last = time.Now()
	c.mu.Unlock()
	return n, err
}

func (c *redialConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.closed && c.reading == 0 && time.Since(c.last) >= c.after {
		if nc, err := c.dial(); err == nil {
			_ = nc.SetReadDeadline(c.rd)
			_ = nc.SetWriteDeadline(c.wd)
			c.cur.Close()
			c.cur = nc
		}
		// On a dial error keep the old connection: if the peer is
		// down the write fails there as it would have anyway.
	}
	cur := c.cur
	c.last = time.Now()
	c.mu.Unlock()
	return cur.Write(p)
}

func (c *redialConn) Close() error {
	c.mu.Lock()
	c.closed = true
	cur := c.cur
	c.mu.Unlock()
	return cur.Close()
}

func (c *redialConn) LocalAddr() net.Addr  { return c.conn().LocalAddr() }
func (c *redialConn) RemoteAddr() net.Addr { return c.conn().RemoteAddr() }

func (c *redialConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd, c.wd = t, t
	cur := c.cur
	c.mu.Unlock()
	return cur.SetDeadline(t)
}

func (c *redialConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd = t
	cur := c.cur
	c.mu.Unlock()
	return cur.SetReadDeadline(t)
}

func (c *redialConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wd = t
	cur := c.cur
	c.mu.Unlock()
	return cur.SetWriteDeadline(t)
}
