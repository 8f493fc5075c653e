package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/cairnd/cairn/cluster/tlsconf"
	"github.com/cairnd/cairn/cluster/tlsconf/tlsconftest"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

func configurator(t testing.TB, cfg tlsconf.Config) *tlsconf.Configurator {
	t.Helper()
	c, err := tlsconf.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsServer starts an echo server that counts handled calls and presents
// serverCert under verify_incoming.
func tlsServer(t *testing.T, ca *tlsconftest.CA, serverCert tlsconftest.Files) (*testServer, *tlsconf.Configurator, *atomic.Int64) {
	t.Helper()
	ts := startServer(t, Limits{HandshakeTimeout: 2 * time.Second})
	conf := configurator(t, ca.Config(serverCert, true, true, true))
	ts.srv.SetTLS(conf)
	var calls atomic.Int64
	ts.srv.Handle("Test.Write", func(ctx context.Context, dec Decoder) (any, error) {
		calls.Add(1)
		return &echoArgs{Msg: "written"}, nil
	})
	return ts, conf, &calls
}

func call(ctx context.Context, addr string, cfg *tls.Config) error {
	s, err := Dial(ctx, addr, DialOptions{Timeout: 2 * time.Second, TLS: cfg})
	if err != nil {
		return err
	}
	defer s.Close()
	var out echoArgs
	return s.Call(ctx, "Test.Write", &echoArgs{Msg: "x"}, &out)
}

func TestTLSServerPort(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	other := tlsconftest.NewCA(t)
	ts, _, calls := tlsServer(t, ca, ca.Cert(t, tlsconf.KindServer, "dc1"))
	ctx := context.Background()

	good := configurator(t, ca.Config(ca.Cert(t, tlsconf.KindClient, "dc1"), false, true, true))
	if err := call(ctx, ts.addr, good.OutgoingTLS("")); err != nil {
		t.Fatalf("client with a proper certificate: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handled %d calls, want 1", calls.Load())
	}
	if v := good.OutgoingTLS("").MinVersion; v != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x, want TLS 1.2", v)
	}

	// An outgoing config trusting the CA but with another CA's client cert.
	foreign := tlsconf.Config{CAFile: ca.CertFile, VerifyOutgoing: true, VerifyServerHostname: true, Datacenter: "dc1", Domain: "consul"}
	fc := other.Cert(t, tlsconf.KindClient, "dc1")
	foreign.CertFile, foreign.KeyFile = fc.CertFile, fc.KeyFile
	noCert := tlsconf.Config{CAFile: ca.CertFile, VerifyOutgoing: true, Datacenter: "dc1", Domain: "consul"}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"plain", nil},
		{"certificate from another CA", configurator(t, foreign).OutgoingTLS("")},
		{"no client certificate", configurator(t, noCert).OutgoingTLS("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := call(ctx, ts.addr, tc.cfg); err == nil {
				t.Fatal("call succeeded")
			}
			if calls.Load() != 1 {
				t.Fatalf("a refused client reached a handler (%d calls)", calls.Load())
			}
		})
	}
	if n := ts.logs.FilterMessageSnippet("refusing connection").Len(); n < 1 {
		t.Fatalf("refusals not logged")
	}
}

// TestTLSServerHostname: with verify_server_hostname a "server" presenting
// a client certificate (client.dc1.consul) is refused by the dialler;
// without it, the chain alone is checked.
func TestTLSServerHostname(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	ts, _, calls := tlsServer(t, ca, ca.Cert(t, tlsconf.KindClient, "dc1"))
	clientCert := ca.Cert(t, tlsconf.KindClient, "dc1")
	strict := configurator(t, ca.Config(clientCert, false, true, true))
	err := call(context.Background(), ts.addr, strict.OutgoingTLS(""))
	if err == nil || !strings.Contains(err.Error(), "server.dc1.consul") {
		t.Fatalf("client cert posing as a server: err = %v, want a hostname mismatch for server.dc1.consul", err)
	}
	if calls.Load() != 0 {
		t.Fatal("request reached the impostor")
	}
	loose := configurator(t, ca.Config(clientCert, false, true, false))
	if err := call(context.Background(), ts.addr, loose.OutgoingTLS("")); err != nil {
		t.Fatalf("verify_outgoing without hostname check: %v", err)
	}
	// Another datacenter's name is checked for a WAN dial.
	if got := strict.OutgoingTLS("dc2").ServerName; got != "server.dc2.consul" {
		t.Fatalf("ServerName for dc2 = %q", got)
	}
}

// TestTLSPlainRaftRefused: under verify_incoming a plain ProtoRaft
// connection never reaches the raft layer; a TLS one does.
func TestTLSPlainRaftRefused(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	ts, _, _ := tlsServer(t, ca, ca.Cert(t, tlsconf.KindServer, "dc1"))
	layer := ts.srv.RaftLayer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := layer.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() { layer.Close() })

	for range 3 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte{ProtoRaft, 0, 1, 2, 3})
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); err != nil && !isReset(err) {
			t.Fatalf("plain raft connection not closed by the server: %v", err)
		}
		c.Close()
	}
	select {
	case c := <-accepted:
		t.Fatalf("plain raft connection from %s reached the raft layer", c.RemoteAddr())
	default:
	}
	testutil.Eventually(t, 2*time.Second, "one refusal log line for the three plain connections", func() error {
		if n := ts.logs.FilterMessageSnippet("refusing connection").Len(); n != 1 {
			return fmt.Errorf("%d refusal lines", n)
		}
		return nil
	})

	// The server's own raft dialler speaks TLS (the server is its own peer here).
	c, err := layer.Dial(raft.ServerAddress(ts.addr), 2*time.Second)
	if err != nil {
		t.Fatalf("TLS raft dial: %v", err)
	}
	defer c.Close()
	inner := c
	if rc, ok := c.(*redialConn); ok { // idle redial wrapper (conns.go)
		inner = rc.conn()
	}
	if _, ok := inner.(*tls.Conn); !ok {
		t.Fatalf("raft dial returned %T over %T, want *tls.Conn", c, inner)
	}
	select {
	case in := <-accepted:
		in.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("TLS raft connection not accepted")
	}
}

// TestTLSReload swaps both ends to a new CA: new connections use the new
// material, and a session made before keeps working.
func TestTLSReload(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	ts, srvConf, calls := tlsServer(t, ca, ca.Cert(t, tlsconf.KindServer, "dc1"))
	cliConf := configurator(t, ca.Config(ca.Cert(t, tlsconf.KindClient, "dc1"), false, true, true))
	ctx := context.Background()
	old, err := Dial(ctx, ts.addr, DialOptions{TLS: cliConf.OutgoingTLS("")})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	ca2 := tlsconftest.NewCA(t)
	if err := srvConf.Reload(ca2.Config(ca2.Cert(t, tlsconf.KindServer, "dc1"), true, true, true)); err != nil {
		t.Fatal(err)
	}
	if err := call(ctx, ts.addr, cliConf.OutgoingTLS("")); err == nil {
		t.Fatal("client still on the old CA was accepted after the server rotated")
	}
	if err := cliConf.Reload(ca2.Config(ca2.Cert(t, tlsconf.KindClient, "dc1"), false, true, true)); err != nil {
		t.Fatal(err)
	}
	if err := call(ctx, ts.addr, cliConf.OutgoingTLS("")); err != nil {
		t.Fatalf("after both rotated: %v", err)
	}
	var out echoArgs
	if err := old.Call(ctx, "Test.Write", &echoArgs{}, &out); err != nil {
		t.Fatalf("session established before the rotation: %v", err)
	}
	// A bad reload (missing key) keeps the running material.
	bad := ca2.Config(tlsconftest.Files{CertFile: ca2.CertFile, KeyFile: "/nonexistent"}, true, true, true)
	if err := srvConf.Reload(bad); err == nil {
		t.Fatal("reload with a missing key succeeded")
	}
	if err := call(ctx, ts.addr, cliConf.OutgoingTLS("")); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", calls.Load())
	}
}

// TestTLSOptional: without verify_incoming plain and TLS clients are both
// served on the one port.
func TestTLSOptional(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	ts := startServer(t, Limits{})
	ts.srv.SetTLS(configurator(t, ca.Config(ca.Cert(t, tlsconf.KindServer, "dc1"), false, false, false)))
	ctx := context.Background()
	var out echoArgs
	for _, cfg := range []*tls.Config{nil, configurator(t, ca.Config(tlsconftest.Files{}, false, true, true)).OutgoingTLS("")} {
		s, err := Dial(ctx, ts.addr, DialOptions{TLS: cfg})
		if err != nil {
			t.Fatalf("tls=%v: %v", cfg != nil, err)
		}
		if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: "hi"}, &out); err != nil || out.Msg != "hi" {
			t.Fatalf("tls=%v: %v %+v", cfg != nil, err, out)
		}
		s.Close()
	}
}

// TestTLSRaftNeedsServerCert: under verify_server_hostname a client
// certificate from the right CA opens RPC sessions but not Raft.
func TestTLSRaftNeedsServerCert(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	ts, _, _ := tlsServer(t, ca, ca.Cert(t, tlsconf.KindServer, "dc1"))
	layer := ts.srv.RaftLayer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	t.Cleanup(func() { layer.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := layer.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for _, tc := range []struct {
		kind tlsconf.Kind
		ok   bool
	}{{tlsconf.KindClient, false}, {tlsconf.KindServer, true}} {
		conf := configurator(t, ca.Config(ca.Cert(t, tc.kind, "dc1"), false, true, true))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		raw, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientHandshake(ctx, raw, conf.OutgoingTLS(""), ProtoRaft)
		cancel()
		if err != nil {
			t.Fatalf("%s: handshake: %v", tc.kind, err)
		}
		if tc.ok {
			select {
			case in := <-accepted:
				in.Close()
			case <-time.After(5 * time.Second):
				t.Fatalf("%s certificate: raft connection not accepted", tc.kind)
			}
		} else {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !isReset(err) {
				t.Fatalf("%s certificate: raft connection not closed: %v", tc.kind, err)
			}
			select {
			case in := <-accepted:
				t.Fatalf("raft connection with a %s certificate reached the raft layer from %s", tc.kind, in.RemoteAddr())
			default:
			}
		}
		c.Close()
	}
	if ts.logs.FilterMessageSnippet("refusing connection").FilterField(zap.String("reason", "raft peer certificate does not name server.dc1.consul")).Len() != 1 {
		t.Fatalf("refusal of the client certificate's raft connection not logged: %v", ts.logs.All())
	}
}

// BenchmarkCallParallelTLS is BenchmarkCallParallel with and without TLS
// (verify_incoming, ECDSA P-256), side by side; cpu-ns/op is the whole
// process's CPU (client and server sides) per call, the figure TLS adds
// to on a busy machine.
func BenchmarkCallParallelTLS(b *testing.B) {
	for _, size := range []int{16, 1024} {
		for _, withTLS := range []bool{false, true} {
			b.Run(fmt.Sprintf("tls=%v/msg=%d", withTLS, size), func(b *testing.B) {
				ts := startServer(b, Limits{HandshakeTimeout: 2 * time.Second})
				var cfg *tls.Config
				if withTLS {
					ca := tlsconftest.NewCA(b)
					ts.srv.SetTLS(configurator(b, ca.Config(ca.Cert(b, tlsconf.KindServer, "dc1"), true, true, true)))
					cfg = configurator(b, ca.Config(ca.Cert(b, tlsconf.KindClient, "dc1"), true, true, true)).OutgoingTLS("")
				}
				s, err := Dial(context.Background(), ts.addr, DialOptions{Timeout: 2 * time.Second, TLS: cfg})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				msg := strings.Repeat("x", size)
				b.ReportAllocs()
				b.SetParallelism(64)
				before := processCPU()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					in := &echoArgs{Msg: msg, N: 1}
					var out echoArgs
					for pb.Next() {
						if err := s.Call(context.Background(), "Test.Echo", in, &out); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-before)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
