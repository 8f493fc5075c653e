package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ProtoTLS (0x03, Consul's RPCTLS) announces a TLS handshake; inside the
// TLS session the first byte is again ProtoRPC or ProtoRaft. The marker
// keeps the one-port first-byte demux working with TLS on.
const ProtoTLS byte = 0x03

// TLSConfigurator is what the server port needs of the TLS settings
// (cluster/tlsconf.Configurator satisfies it). Each method is asked per
// connection, so a reload reaches the next connection.
type TLSConfigurator interface {
	// IncomingTLS is the listener's TLS configuration, or nil when this
	// server has no certificate (then ProtoTLS connections are refused).
	IncomingTLS() *tls.Config
	// VerifyIncoming reports whether plain connections must be refused.
	VerifyIncoming() bool
	// OutgoingTLS is the configuration to dial a server of datacenter dc
	// with ("" = this agent's), or nil to dial plain.
	OutgoingTLS(dc string) *tls.Config
	// RaftPeerName is the name a Raft peer's certificate must carry
	// (server.<dc>.<domain> under verify_server_hostname), or "" when any
	// certificate the CA signed will do.
	RaftPeerName() string
}

const (
	// refusalLogInterval: a refused peer is logged at most this often, so
	// a scanner or a misconfigured fleet cannot flood the log (one line per
	// connection was ~6,000 lines in the probe).
	refusalLogInterval = time.Minute
	// refusalLogPeers bounds the memory of which peers were logged; when
	// full it is cleared, at worst logging a peer again early.
	refusalLogPeers = 4096
)

// tlsState is the server's TLS part: the configurator (nil = plain only)
// and the per-peer refusal log limiter.
type tlsState struct {
	conf atomic.Pointer[TLSConfigurator]

	logMu  sync.Mutex
	logged map[string]time.Time // peer IP -> last logged refusal
}

// SetTLS makes the server accept ProtoTLS connections and, under
// VerifyIncoming, refuse plain ones; the raft layer then dials peers with
// c.OutgoingTLS. Call it before Serve; nil turns TLS off.
func (s *Server) SetTLS(c TLSConfigurator) {
	if c == nil {
		s.tls.conf.Store(nil)
		return
	}
	s.tls.conf.Store(&c)
}

func (s *Server) tlsConf() TLSConfigurator {
	if p := s.tls.conf.Load(); p != nil {
		return *p
	}
	return nil
}

// shouldLog reports whether a refusal of peer may be logged now.
func (t *tlsState) shouldLog(peer string, now time.Time) bool {
	t.logMu.Lock()
	defer t.logMu.Unlock()
	if last, ok := t.logged[peer]; ok && now.Sub(last) < refusalLogInterval {
		return false
	}
	if t.logged == nil || len(t.logged) >= refusalLogPeers {
		t.logged = make(map[string]time.Time)
	}
	t.logged[peer] = now
	return true
}

// refuse closes conn, counting it, and logs the reason once per peer per
// refusalLogInterval.
func (s *Server) refuse(conn net.Conn, reason, detail string, err error) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	remote := conn.RemoteAddr().String()
	peer := remote
	if h, _, e := net.SplitHostPort(remote); e == nil {
		peer = h
	}
	if s.tls.shouldLog(peer, time.Now()) {
		fields := []zap.Field{zap.String("remote", remote), zap.String("reason", detail)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		s.logger.Warn("rpc: refusing connection (further refusals of this peer are not logged for a minute)", fields...)
	}
	conn.Close()
}

// refusePlain refuses a plain (non-TLS) connection under verify_incoming;
// it reports whether it did.
func (s *Server) refusePlain(conn net.Conn, proto string) bool {
	c := s.tlsConf()
	if c == nil || !c.VerifyIncoming() {
		return false
	}
	s.refuse(conn, "tls_required", "plain "+proto+" connection refused: verify_incoming requires TLS", nil)
	return true
}

// serveTLS runs the server side of a ProtoTLS connection: the handshake
// (bounded by HandshakeTimeout), then the inner protocol byte. It reports
// whether conn was handed off to the raft layer.
func (s *Server) serveTLS(ctx context.Context, conn net.Conn) bool {
	c := s.tlsConf()
	var cfg *tls.Config
	if c != nil {
		cfg = c.IncomingTLS()
	}
	if cfg == nil {
		s.refuse(conn, "tls_unavailable", "TLS connection but this server has no certificate", nil)
		return false
	}
	_ = conn.SetDeadline(time.Now().Add(s.limits.HandshakeTimeout))
	tc := tls.Server(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.refuse(conn, "tls_handshake", "TLS handshake failed", err)
		return false
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		s.reject(conn, "handshake", "no protocol byte inside TLS", err)
		return false
	}
	_ = conn.SetWriteDeadline(time.Time{})
	switch b[0] {
	case ProtoRPC:
		s.serveSession(ctx, tc)
		return false
	case ProtoRaft:
		// Raft is server-to-server: under verify_server_hostname a client
		// agent's certificate (signed by the same CA) must not be enough
		// to cast votes or append entries.
		if name := c.RaftPeerName(); name != "" {
			peers := tc.ConnectionState().PeerCertificates
			if len(peers) == 0 {
				s.refuse(conn, "raft_not_server", "raft over TLS without a certificate naming "+name, nil)
				return false
			}
			if err := peers[0].VerifyHostname(name); err != nil {
				s.refuse(conn, "raft_not_server", "raft peer certificate does not name "+name, err)
				return false
			}
		}
		_ = conn.SetReadDeadline(time.Time{})
		return s.handOffRaft(ctx, s.newIdleRaftConn(tc))
	default:
		s.reject(conn, "protocol", fmt.Sprintf("unknown protocol byte 0x%02x inside TLS", b[0]), nil)
		return false
	}
}

// clientHandshake sends the ProtoTLS marker, runs the client handshake
// and selects proto inside TLS. With a nil cfg it only writes proto.
// conn is closed on error.
func clientHandshake(ctx context.Context, conn net.Conn, cfg *tls.Config, proto byte) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	out := conn
	if cfg != nil {
		if _, err := conn.Write([]byte{ProtoTLS}); err != nil {
			conn.Close()
			return nil, fmt.Errorf("write TLS marker: %w", err)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		out = tc
	}
	if _, err := out.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write protocol byte: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return out, nil
}
