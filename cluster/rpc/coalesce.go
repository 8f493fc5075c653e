package rpc

import (
	"net"
	"sync"
	"time"
)

const (
	// maxPendingWrite bounds the bytes a session may queue ahead of the
	// socket before yamux's sender blocks (backpressure, bounded memory).
	maxPendingWrite = 256 << 10
	// closeFlushWait bounds how long Close waits to flush queued frames
	// (e.g. a GoAway) before closing the socket anyway.
	closeFlushWait = time.Second
	// keptWriteBuffer is the largest write buffer an idle session keeps:
	// a burst may grow the buffers to maxPendingWrite, but thousands of
	// idle client sessions must not each keep that (README.md, "Memory
	// per connected client").
	keptWriteBuffer = 1 << 10
)

// batchConn combines writes: yamux's send loop writes every frame header
// and body with its own conn.Write, one syscall each. batchConn's Write
// only appends to a buffer and, unless one is already running, starts a
// flusher goroutine, which writes everything queued in one syscall and
// exits once nothing is left. Under load, frames queued while the previous
// write was in the kernel leave together (profiles showed ~30% of a busy
// server's CPU in write(2) before this); an idle session has no flusher
// and keeps at most keptWriteBuffer bytes of buffer.
//
// A write error is sticky and reported by the next Write; yamux then
// tears the session down, as it would have on the failed write itself.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	space    *sync.Cond
	buf      []byte
	spare    []byte
	err      error
	flushing bool          // a flusher goroutine is running
	exited   chan struct{} // closed when the running flusher returns
	once     sync.Once
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.space = sync.NewCond(&b.mu)
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.buf) >= maxPendingWrite {
		b.space.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.buf = append(b.buf, p...)
	if !b.flushing {
		b.flushing = true
		b.exited = make(chan struct{})
		go b.flush(b.exited)
	}
	b.mu.Unlock()
	return len(p), nil
}

// flush writes what is queued until nothing is, then returns. It is owned
// by the batchConn: it ends on its own, at the latest once Close closed
// the socket under a blocked write.
func (b *batchConn) flush(exited chan struct{}) {
	defer close(exited)
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) > 0 && b.err == nil {
		out := b.buf
		b.buf = b.spare[:0]
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil && b.err == nil {
			b.err = err
		}
		b.space.Broadcast()
	}
	b.flushing = false
	if cap(b.buf) > keptWriteBuffer {
		b.buf = nil
	}
	if cap(b.spare) > keptWriteBuffer {
		b.spare = nil
	}
}

// Close flushes what is queued (bounded by closeFlushWait), then closes.
func (b *batchConn) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		var exited chan struct{}
		if b.flushing {
			exited = b.exited
		}
		b.mu.Unlock()
		if exited != nil {
			t := time.NewTimer(closeFlushWait)
			select {
			case <-exited:
			case <-t.C:
			}
			t.Stop()
		}
		b.mu.Lock()
		if b.err == nil {
			b.err = net.ErrClosed
		}
		b.space.Broadcast()
		b.mu.Unlock()
	})
	return b.Conn.Close()
}
