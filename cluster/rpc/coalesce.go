package rpc

import (
	"encoding/binary"
	"net"
)

// coalescingConn halves the write syscalls of a yamux session: yamux's
// send loop writes a data frame's 12-byte header and its body as two
// separate conn.Write calls, back to back, from one goroutine. This
// wrapper holds such a header and sends it with the body in one writev.
// Any other write (control frames, empty data frames) passes straight
// through, so nothing is ever delayed beyond the very next Write.
type coalescingConn struct {
	net.Conn
	hdr     [yamuxHeaderSize]byte
	pending bool
	bufs    net.Buffers
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.pending {
		c.pending = false
		c.bufs = append(c.bufs[:0], c.hdr[:], p)
		n, err := c.bufs.WriteTo(c.Conn)
		c.bufs = c.bufs[:0]
		// Report only the body's bytes: the header was already
		// reported written.
		return max(int(n)-yamuxHeaderSize, 0), err
	}
	if len(p) == yamuxHeaderSize && p[1] == 0 /* data */ && binary.BigEndian.Uint32(p[8:12]) > 0 {
		copy(c.hdr[:], p)
		c.pending = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
