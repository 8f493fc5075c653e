//go:build !portable_udp

package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestShutdownWakesBlockedReader: a reader asleep in recvfrom on an
// unconnected UDP socket returns at once on shutdown, long before its
// safety-net receive timeout: Close never waits for readTimeout, which is
// why that timeout can be long (each expiry costs an idle agent wake-ups).
func TestShutdownWakesBlockedReader(t *testing.T) {
	u, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"), false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	got := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		var p peer
		close(started)
		for {
			_, err := u.recv(buf, &p)
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				got <- err
				return
			}
		}
	}()
	<-started // whether or not the reader is asleep yet, shutdown must end it
	begin := time.Now()
	u.shutdown()
	select {
	case err := <-got:
		if !errors.Is(err, errShutdown) {
			t.Fatalf("recv after shutdown: %v, want errShutdown", err)
		}
		t.Logf("reader woke %v after shutdown", time.Since(begin))
	case <-time.After(readTimeout / 2):
		t.Fatalf("reader still blocked %v after shutdown (readTimeout %v)", readTimeout/2, readTimeout)
	}
}

// TestBatchRoundTrip: datagrams queued on the socket from several senders
// come out of one recvBatch with their bytes and sources, and answers
// queued for each go back to the right sender in one flush. Batches
// larger than udpBatchSize are split; a shutdown wakes a batch reader.
func TestBatchRoundTrip(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "blocking", true: "polled"}[poll], func(t *testing.T) {
			u, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"), false, poll)
			if err != nil {
				t.Fatal(err)
			}
			defer u.close()
			dst := u.local.(*net.UDPAddr)
			if !poll { // bound to port 0: ask the kernel which port
				sa, err := unix.Getsockname(u.fd)
				if err != nil {
					t.Fatal(err)
				}
				dst = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
			}
			const senders, each = 5, 4 // 20 datagrams > udpBatchSize
			var conns []*net.UDPConn
			for i := range senders {
				c, err := net.DialUDP("udp", nil, dst)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
				for j := range each {
					if _, err := c.Write([]byte(fmt.Sprintf("q%d-%d", i, j))); err != nil {
						t.Fatal(err)
					}
				}
			}
			b := newUDPBatch(u.batchLen())
			got := map[string]bool{}
			calls := 0
			for len(got) < senders*each && calls < 2*senders*each {
				n, err := u.recvBatch(b)
				calls++
				if err != nil {
					t.Fatalf("recvBatch: %v", err)
				}
				if n < 1 || n > udpBatchSize {
					t.Fatalf("recvBatch returned %d datagrams", n)
				}
				for i := range n {
					q := string(b.bufs[i][:b.lens[i]])
					got[q] = true
					// Answer with the query's own text, from the batch's buffer.
					resp := append(b.outs[i][:0], "a"+q[1:]...)
					u.queue(b, resp, &b.from[i])
				}
				u.flush(b)
			}
			if len(got) != senders*each {
				t.Fatalf("received %d distinct datagrams in %d calls, want %d", len(got), calls, senders*each)
			}
			if !poll && calls >= senders*each {
				t.Errorf("blocking socket: %d recvBatch calls for %d queued datagrams: not batched", calls, senders*each)
			}
			buf := make([]byte, 64)
			for i, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				seen := map[string]bool{}
				for range each {
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("sender %d: %v (answers so far %v)", i, err, seen)
					}
					seen[string(buf[:n])] = true
				}
				for j := range each {
					if want := fmt.Sprintf("a%d-%d", i, j); !seen[want] {
						t.Errorf("sender %d: no answer %q (got %v)", i, want, seen)
					}
				}
			}
		})
	}
	t.Run("shutdown", func(t *testing.T) {
		u, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"), false, false)
		if err != nil {
			t.Fatal(err)
		}
		defer u.close()
		done := make(chan error, 1)
		go func() {
			b := newUDPBatch(u.batchLen())
			for {
				_, err := u.recvBatch(b)
				if err != nil && !errors.Is(err, unix.EAGAIN) {
					done <- err
					return
				}
			}
		}()
		time.Sleep(50 * time.Millisecond)
		u.shutdown()
		select {
		case err := <-done:
			if !errors.Is(err, errShutdown) {
				t.Fatalf("recvBatch after shutdown: %v, want errShutdown", err)
			}
		case <-time.After(readTimeout / 2):
			t.Fatal("batch reader still blocked after shutdown")
		}
	})
}
