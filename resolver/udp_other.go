//go:build !linux || portable_udp

package resolver

import (
	"net"
	"net/netip"
	"time"
)

// udpSock is the portable UDP socket: a net.UDPConn read through Go's
// netpoller. The blocking-recvfrom readers of udp_linux.go rely on Linux
// spreading one port's datagrams over SO_REUSEPORT sockets; elsewhere one
// socket serves the port.
type udpSock struct {
	conn  *net.UDPConn
	local net.Addr
}

// readersSleepInSyscall: the netpoller parks readers, no P is held.
const readersSleepInSyscall = false

// reusePortSpreads: only Linux balances datagrams over SO_REUSEPORT
// sockets (BSDs and macOS hand them all to one), so one reader.
const reusePortSpreads = false

// listenUDP opens a UDP socket bound to addr; reusePort is never asked for
// here (one reader), and every socket is polled.
func listenUDP(addr netip.AddrPort, _, _ bool) (*udpSock, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	// Best effort: the kernel caps the buffers.
	_ = c.SetReadBuffer(udpSocketBuffer)
	_ = c.SetWriteBuffer(udpSocketBuffer)
	return &udpSock{conn: c, local: c.LocalAddr()}, nil
}

// peer is the source address of a datagram.
type peer struct{ ap netip.AddrPort }

func (p *peer) addrPort() netip.AddrPort { return p.ap }

// recv blocks for one datagram; it does not allocate.
func (u *udpSock) recv(buf []byte, from *peer) (int, error) {
	n, ap, err := u.conn.ReadFromUDPAddrPort(buf)
	from.ap = ap
	return n, err
}

// send writes b to p.
func (u *udpSock) send(b []byte, to *peer) error {
	_, err := u.conn.WriteToUDPAddrPort(b, to.ap)
	return err
}

// batchSys: no batched syscalls here.
type batchSys struct{}

// batchLen: one datagram at a time.
func (u *udpSock) batchLen() int { return 1 }

// recvBatch reads one datagram.
func (u *udpSock) recvBatch(b *udpBatch) (int, error) {
	n, err := u.recv(b.bufs[0], &b.from[0])
	b.lens[0] = n
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// queue sends resp at once.
func (u *udpSock) queue(_ *udpBatch, resp []byte, to *peer) { _ = u.send(resp, to) }

// flush has nothing queued.
func (u *udpSock) flush(*udpBatch) {}

// shutdown wakes a reader blocked in recv; close then releases the socket.
func (u *udpSock) shutdown() { _ = u.conn.SetReadDeadline(time.Unix(1, 0)) }

func (u *udpSock) close() error { return u.conn.Close() }
