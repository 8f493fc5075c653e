package agent_test

// Hostile raw TCP input against the server port of a live cluster
// (TestForwarderE2E/BadInputToServer): the server closes the offender and keeps
// serving everyone else.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/hashicorp/yamux"
)

// rawConn dials the server RPC port.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectClosed reads from c until the server closes it; a timeout (the
// server kept it open) fails the test.
func expectClosed(t *testing.T, what string, c net.Conn, within time.Duration) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open after %v", what, within)
		}
		t.Logf("%s: closed by server (%v)", what, err)
		return
	}
	t.Fatalf("%s: server kept sending", what)
}

// expectStreamClosed reads from a yamux stream until it ends: the server
// closed the stream without a response.
func expectStreamClosed(t *testing.T, what string, st *yamux.Stream, within time.Duration) {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(st)
	if errors.Is(err, yamux.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: stream still open after %v", what, within)
	}
	if len(b) != 0 {
		t.Fatalf("%s: server answered %d bytes instead of closing", what, len(b))
	}
	t.Logf("%s: stream closed by server (err=%v)", what, err)
}

// yamuxSession starts a yamux client session the way rpc.Dial does
// (protocol byte 0x01 first) over a raw connection.
func yamuxSession(t *testing.T, addr string) (net.Conn, *yamux.Session) {
	t.Helper()
	c := rawConn(t, addr)
	if _, err := c.Write([]byte{0x01}); err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	s, err := yamux.Client(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func testBadInput(t *testing.T, hc *http.Client, cl *e2eCluster, client *agenttest.Proc) {
	target, err := cl.connectedServer(client)
	if err != nil {
		t.Fatal(err)
	}
	addr := target.RPCAddr()
	t.Logf("hostile input to %s (%s), which %s is connected to", target.Name, addr, client.Name)
	rejectedBefore, _ := e2eMetric(hc, target, "cairn_rpc_rejected_total")

	// A well-behaved client reading throughout, at a steady, light pace.
	base := "http://" + client.HTTPAddr()
	rd := startReadLoad(hc, 4, 2*time.Millisecond, 5*time.Second, base+"/v1/kv/e2e/k", base+"/v1/health/service/web")
	sendHostileInput(t, addr)

	// Let the readers run a little past the attacks, then stop them.
	past := rd.total()
	testutil.Eventually(t, 10*time.Second, "reads after the attacks", func() error {
		if n := rd.total() - past; n < 20 {
			return fmt.Errorf("%d reads since the last attack", n)
		}
		return nil
	})
	rd.stop()
	if n := rd.errs.Load(); n > 0 {
		t.Fatalf("the well-behaved client saw %d errors in %d reads; last: %v", n, rd.total(), rd.lastErr.Load())
	}
	if rd.total() < 20 {
		t.Fatalf("only %d reads completed during the attacks", rd.total())
	}
	now, err := cl.connectedServer(client)
	if err != nil || now != target {
		t.Fatalf("client's connection moved or broke during the attacks: now %v (%v), want %s", now, err, target.Name)
	}
	rejectedAfter, err := e2eMetric(hc, target, "cairn_rpc_rejected_total")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clean reads during the attacks; %s rejected %v connections/streams", rd.total(), target.Name, rejectedAfter-rejectedBefore)
	if rejectedAfter-rejectedBefore < 4 {
		t.Fatalf("cairn_rpc_rejected_total grew by %v, want >= 4", rejectedAfter-rejectedBefore)
	}
}

// sendHostileInput sends addr, a server port, each kind of bad input in
// turn and checks the server closes the connection (or the stream) it
// came on.
func sendHostileInput(t *testing.T, addr string) {
	// 1. Random bytes (first byte is no protocol byte).
	junk := make([]byte, 4096)
	rand.Read(junk)
	junk[0] = 0xA7
	c := rawConn(t, addr)
	c.Write(junk)
	expectClosed(t, "random bytes", c, 3*time.Second)

	// 1b. The RPC protocol byte followed by random bytes (garbage yamux).
	rand.Read(junk)
	junk[0], junk[1] = 0x01, 0x9C
	c = rawConn(t, addr)
	c.Write(junk)
	expectClosed(t, "protocol byte + random bytes", c, 3*time.Second)

	// 2. A truncated yamux frame header, then the write side closed.
	c = rawConn(t, addr)
	c.Write([]byte{0x01, 0x00, 0x00, 0x00})
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, "truncated yamux frame", c, 3*time.Second)

	// 2b. A valid session whose request frame is truncated: the length
	// prefix announces 1000 bytes, 10 arrive, then the stream is half-closed.
	_, sess := yamuxSession(t, addr)
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var pre [4]byte
	binary.BigEndian.PutUint32(pre[:], 1000)
	st.Write(append(pre[:], make([]byte, 10)...))
	st.Close() // FIN: no more bytes will come
	expectStreamClosed(t, "truncated request frame", st, 5*time.Second)
	sess.Close()

	// 3. A 100 MB length prefix on a request stream: refused before any
	// allocation, the stream is closed.
	_, sess = yamuxSession(t, addr)
	st, err = sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(pre[:], 100<<20)
	st.Write(pre[:])
	st.Write(make([]byte, 1024))
	expectStreamClosed(t, "100 MB request length prefix", st, 5*time.Second)
	sess.Close()

	// 3b. A yamux data frame announcing 100 MB (beyond any receive window):
	// the whole connection is closed.
	c = rawConn(t, addr)
	hdr := make([]byte, 13)
	hdr[0] = 0x01                                  // ProtoRPC
	hdr[1], hdr[2] = 0, 0                          // yamux version 0, type data
	binary.BigEndian.PutUint16(hdr[3:5], 0x1)      // SYN
	binary.BigEndian.PutUint32(hdr[5:9], 1)        // stream 1
	binary.BigEndian.PutUint32(hdr[9:13], 100<<20) // length
	c.Write(hdr)
	c.Write(make([]byte, 64<<10))
	expectClosed(t, "100 MB yamux frame", c, 5*time.Second)
}
