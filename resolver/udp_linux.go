//go:build !portable_udp

// The build tag portable_udp swaps this file for udp_other.go, so the
// portable path's tests run on Linux too:
// go test -tags portable_udp ./resolver ./cache

package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSock is one blocking UDP socket read by one goroutine in a plain
// blocking recvmmsg (recvBatch; recv is the one-datagram form), outside
// Go's netpoller.
//
// Why: at moderate load (a query every ~50 µs) the netpoller path costs a
// failed recvfrom, a park, an epoll_wait and a reschedule per packet;
// a thread sleeping in recvfrom costs only the recvfrom and the sendto.
// Measured with .ci/bench/client.sh at a steady 20k QPS (see git log).
// The socket has a receive timeout so the reader notices Close even if
// shutdown(2) did not wake it.
type udpSock struct {
	fd    int
	local net.Addr
	// conn, when set, is a socket read through Go's netpoller instead
	// (listenUDP's poll): fd is then unused.
	conn *net.UDPConn
}

// readersSleepInSyscall: each reader blocks in recvfrom on its own
// thread (ensureProcs).
const readersSleepInSyscall = true

// reusePortSpreads: Linux spreads the datagrams of one port over the
// SO_REUSEPORT sockets bound to it, so several readers share the load.
const reusePortSpreads = true

// listenUDP opens a blocking UDP socket bound to addr, with SO_REUSEPORT
// when it is one of several readers. A single socket goes without, so no
// other process can bind the port beside it and take half its queries.
//
// poll asks for a socket read through Go's netpoller instead: the choice
// of server agents, whose every query takes the full path in a goroutine
// of its own. A reader parked in the netpoller leaves its P to those
// goroutines on the same thread; a reader asleep in recvfrom makes each
// one wait for a P handoff and a thread switch, which cost a server agent
// pinned to one core a third of its queries (dns_qps ratio 0.72 → 0.49).
// Client agents answer most queries inline from packed bytes, where the
// blocking read is the cheaper one.
func listenUDP(addr netip.AddrPort, reusePort, poll bool) (*udpSock, error) {
	if poll {
		return listenPolled(addr, reusePort)
	}
	family := unix.AF_INET
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (*udpSock, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("SO_REUSEPORT", err)
		}
	}
	// Best effort: the kernel caps the buffers at rmem_max/wmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpSocketBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, udpSocketBuffer)
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().Unmap().As4()}
	} else {
		s6 := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
		if z := addr.Addr().Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				s6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = s6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	return &udpSock{fd: fd, local: net.UDPAddrFromAddrPort(addr)}, nil
}

// listenPolled opens a UDP socket read through the netpoller.
func listenPolled(addr netip.AddrPort, reusePort bool) (*udpSock, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if !reusePort {
			return nil
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	// Best effort: the kernel caps the buffers.
	_ = c.SetReadBuffer(udpSocketBuffer)
	_ = c.SetWriteBuffer(udpSocketBuffer)
	return &udpSock{fd: -1, local: c.LocalAddr(), conn: c}, nil
}

// peer is a raw source address as recvfrom filled it, or (len 0) the
// address a polled socket read.
type peer struct {
	sa  unix.RawSockaddrAny
	len uint32
	ap  netip.AddrPort
}

// addrPort converts p (slow path only).
func (p *peer) addrPort() netip.AddrPort {
	if p.len == 0 {
		return p.ap
	}
	switch p.sa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&p.sa))
		pb := (*[2]byte)(unsafe.Pointer(&s.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(pb[0])<<8|uint16(pb[1]))
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&p.sa))
		pb := (*[2]byte)(unsafe.Pointer(&s.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(pb[0])<<8|uint16(pb[1]))
	}
	return netip.AddrPort{}
}

var errShutdown = errors.New("resolver: udp socket shut down")

// recv blocks for one datagram (or the read timeout: unix.EAGAIN).
func (u *udpSock) recv(buf []byte, from *peer) (int, error) {
	if u.conn != nil {
		n, ap, err := u.conn.ReadFromUDPAddrPort(buf)
		from.ap, from.len = ap, 0
		return n, err
	}
	from.len = unix.SizeofSockaddrAny
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(u.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		0, uintptr(unsafe.Pointer(&from.sa)), uintptr(unsafe.Pointer(&from.len)))
	if e != 0 {
		return 0, e
	}
	if n == 0 && from.len == 0 {
		return 0, errShutdown
	}
	return int(n), nil
}

// send writes b to p without blocking (a full socket buffer drops the
// answer; the client retries, as with any UDP loss).
func (u *udpSock) send(b []byte, to *peer) error {
	if len(b) == 0 {
		return nil
	}
	if u.conn != nil {
		_, err := u.conn.WriteToUDPAddrPort(b, to.ap)
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&to.sa)), uintptr(to.len))
	if e != 0 {
		return e
	}
	return nil
}

// mmsghdr is struct mmsghdr of recvmmsg(2)/sendmmsg(2) (not in x/sys):
// Go pads it to the alignment of Msghdr, as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batchSys is the recvmmsg/sendmmsg state of a udpBatch: the headers and
// iovecs point into the batch's buffers and peers, set once per call.
type batchSys struct {
	in   [udpBatchSize]mmsghdr
	inv  [udpBatchSize]unix.Iovec
	out  [udpBatchSize]mmsghdr
	outv [udpBatchSize]unix.Iovec
	nout int
}

// batchLen is how many datagrams recvBatch may return: a polled socket
// reads one at a time.
func (u *udpSock) batchLen() int {
	if u.conn != nil {
		return 1
	}
	return udpBatchSize
}

// recvBatch blocks for at least one datagram and takes up to
// udpBatchSize that are queued (MSG_WAITFORONE), or times out
// (unix.EAGAIN). A polled socket reads one datagram.
func (u *udpSock) recvBatch(b *udpBatch) (int, error) {
	b.sys.nout = 0
	if u.conn != nil {
		n, err := u.recv(b.bufs[0], &b.from[0])
		b.lens[0] = n
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	for i := range b.sys.in {
		v := &b.sys.inv[i]
		v.Base = &b.bufs[i][0]
		v.SetLen(len(b.bufs[i]))
		h := &b.sys.in[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.from[i].sa))
		h.Namelen = unix.SizeofSockaddrAny
		h.Iov = v
		h.SetIovlen(1)
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&b.sys.in[0])), udpBatchSize,
		unix.MSG_WAITFORONE, 0, 0)
	if e != 0 {
		return 0, e
	}
	for i := range int(n) {
		b.lens[i] = int(b.sys.in[i].n)
		b.from[i].len = b.sys.in[i].hdr.Namelen
	}
	if n == 1 && b.lens[0] == 0 && b.from[0].len == 0 {
		return 0, errShutdown
	}
	return int(n), nil
}

// queue adds resp for to to the batch's answers (sent by flush); resp
// must stay untouched until then. A polled socket sends at once.
func (u *udpSock) queue(b *udpBatch, resp []byte, to *peer) {
	if u.conn != nil || len(resp) == 0 {
		_ = u.send(resp, to)
		return
	}
	i := b.sys.nout
	b.sys.nout++
	v := &b.sys.outv[i]
	v.Base = &resp[0]
	v.SetLen(len(resp))
	h := &b.sys.out[i].hdr
	h.Name = (*byte)(unsafe.Pointer(&to.sa))
	h.Namelen = to.len
	h.Iov = v
	h.SetIovlen(1)
}

// flush sends the queued answers without blocking, in as few sendmmsg
// calls as the socket buffer allows; what it refuses is dropped (the
// client retries, as with any UDP loss), like send.
func (u *udpSock) flush(b *udpBatch) {
	for sent := 0; sent < b.sys.nout; {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&b.sys.out[sent])),
			uintptr(b.sys.nout-sent), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 || n == 0 {
			break
		}
		sent += int(n)
	}
	b.sys.nout = 0
}

// shutdown wakes a reader blocked in recv.
func (u *udpSock) shutdown() {
	if u.conn != nil {
		_ = u.conn.SetReadDeadline(time.Unix(1, 0))
		return
	}
	_ = unix.Shutdown(u.fd, unix.SHUT_RDWR)
}

func (u *udpSock) close() error {
	if u.conn != nil {
		return u.conn.Close()
	}
	return unix.Close(u.fd)
}
