package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftLayer adapts the server's ProtoRaft connections to raft.StreamLayer.
type raftLayer struct {
	srv       *Server
	advertise net.Addr
	closeOnce sync.Once
	closed    chan struct{}
}

// RaftLayer returns the raft.StreamLayer fed by ProtoRaft connections on
// this server's port; advertise is the address peers dial. Until it is
// called, ProtoRaft connections are refused. Closing the layer stops
// Accept but does not close the Server.
func (s *Server) RaftLayer(advertise net.Addr) raft.StreamLayer {
	s.mu.Lock()
	s.raftEnabled = true
	s.mu.Unlock()
	return &redialLayer{StreamLayer: &raftLayer{srv: s, advertise: advertise, closed: make(chan struct{})}, after: s.limits.RaftIdleTimeout / 2}
}

// Accept returns the next inbound raft connection.
func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.srv.raftCh:
		return c, nil
	case <-l.closed:
		return nil, fmt.Errorf("rpc: raft layer closed: %w", net.ErrClosed)
	case <-l.srv.closeCh:
		return nil, fmt.Errorf("%w: %w", ErrServerClosed, net.ErrClosed)
	}
}

// Close stops Accept.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr is the advertised address.
func (l *raftLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer's RPC port and selects ProtoRaft.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	var cfg *tls.Config
	if c := l.srv.tlsConf(); c != nil {
		cfg = c.OutgoingTLS("") // raft peers are in this datacenter
	}
	if conn, err = clientHandshake(ctx, conn, cfg, ProtoRaft); err != nil {
		return nil, fmt.Errorf("rpc: raft dial %s: %w", address, err)
	}
	return conn, nil
}
