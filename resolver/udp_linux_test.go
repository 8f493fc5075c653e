//go:build !portable_udp

package resolver

import (
	"errors"
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
