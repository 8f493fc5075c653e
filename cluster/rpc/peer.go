package rpc

import (
	"context"
	"net"
)

type peerKey struct{}

// contextWithPeer records the remote address a request came from.
func contextWithPeer(ctx context.Context, addr net.Addr) context.Context {
	return context.WithValue(ctx, peerKey{}, addr)
}

// PeerFromContext is the remote address of the connection a handler's
// request arrived on; ok is false for in-process calls.
func PeerFromContext(ctx context.Context) (addr net.Addr, ok bool) {
	addr, ok = ctx.Value(peerKey{}).(net.Addr)
	return addr, ok
}
