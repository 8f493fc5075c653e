package agent_test

// Multi-process proof of TLS on the server port (issue 15 item 1): three
// servers and a client agent with certificates from one CA under
// verify_incoming/verify_outgoing/verify_server_hostname form a cluster
// and answer DNS through the forwarder; a plain client, a client with
// another CA's certificate and a forged Raft vote over a plain connection
// change nothing; a client certificate posing as a server is refused; and
// rotating every certificate with SIGHUP keeps the cluster writable.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/cairnd/cairn/cluster/tlsconf"
	"github.com/cairnd/cairn/cluster/tlsconf/tlsconftest"
	"github.com/hashicorp/raft"
	"github.com/miekg/dns"
)

// tlsAgentConfig writes a config dir holding Consul's tls block.
func tlsAgentConfig(t *testing.T, ca *tlsconftest.CA, f tlsconftest.Files, verifyIncoming bool) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"tls": map[string]any{
		"defaults": map[string]any{
			"ca_file": ca.CertFile, "cert_file": f.CertFile, "key_file": f.KeyFile,
			"verify_incoming": verifyIncoming, "verify_outgoing": true,
		},
		"internal_rpc": map[string]any{"verify_server_hostname": true},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tlsCall runs one RPC over TLS (cfg nil: plain).
func tlsCall(addr string, cfg *tls.Config, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := rpc.Dial(ctx, addr, rpc.DialOptions{Timeout: 3 * time.Second, TLS: cfg})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Call(ctx, method, args, reply)
}

// raftTerm reads the server's current raft term from /v1/agent/self.
func raftTerm(p *agenttest.Proc) (uint64, error) {
	b, _, err := e2eGet(e2eClient(), "http://"+p.HTTPAddr()+"/v1/agent/self", 3*time.Second)
	if err != nil {
		return 0, err
	}
	var self struct {
		Stats map[string]map[string]string
	}
	if err := json.Unmarshal(b, &self); err != nil {
		return 0, err
	}
	return strconv.ParseUint(self.Stats["raft"]["term"], 10, 64)
}

// plainRaftLayer dials a server's port with the plain ProtoRaft byte: a
// peer without a certificate speaking raft's own wire protocol.
type plainRaftLayer struct{}

func (plainRaftLayer) Accept() (net.Conn, error) { return nil, errors.New("dial only") }
func (plainRaftLayer) Close() error              { return nil }
func (plainRaftLayer) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (plainRaftLayer) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(a), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{rpc.ProtoRaft}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func TestTLSClusterE2E(t *testing.T) {
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	ca := tlsconftest.NewCA(t)
	other := tlsconftest.NewCA(t)

	// Three servers, each with its own server certificate.
	var servers []*agenttest.Proc
	var serverFiles []tlsconftest.Files
	var join string
	for i := range 3 {
		f := ca.Cert(t, tlsconf.KindServer, "dc1")
		serverFiles = append(serverFiles, f)
		args := []string{"--server", "--bootstrap-expect", "3", "--config-dir", tlsAgentConfig(t, ca, f, true)}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := startAgent(t, bin, "ts"+strconv.Itoa(i+1), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		servers = append(servers, p)
	}
	clientFiles := ca.Cert(t, tlsconf.KindClient, "dc1")
	client := startAgent(t, bin, "tc1", "--retry-join", join, "--config-dir", tlsAgentConfig(t, ca, clientFiles, false))

	cliConf, err := tlsconf.New(ca.Config(ca.Cert(t, tlsconf.KindCLI, "dc1"), false, true, true))
	if err != nil {
		t.Fatal(err)
	}
	good := cliConf.OutgoingTLS("")
	leaderOf := func(p *agenttest.Proc) string {
		var l string
		if err := tlsCall(p.RPCAddr(), good, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, &l); err != nil {
			return ""
		}
		return l
	}
	testutil.Eventually(t, 60*time.Second, "the TLS servers agree on a leader", func() error {
		first := ""
		for _, p := range servers {
			l := leaderOf(p)
			if l == "" || (first != "" && l != first) {
				return fmt.Errorf("%s sees leader %q (first %q)", p.Name, l, first)
			}
			first = l
		}
		return nil
	})
	hc := e2eClient()
	testutil.Eventually(t, 30*time.Second, "the client agent's DNS answers through the forwarder", func() error {
		r, err := dnsA(client.DNSAddr(), "consul.service.consul.", 2*time.Second)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(answerAddrs(r)) == 0 {
			return fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(answerAddrs(r)))
		}
		return nil
	})
	if _, err := e2ePut(hc, "http://"+client.HTTPAddr()+"/v1/kv/tls/ok", []byte("v")); err != nil {
		t.Fatalf("write through the client agent: %v", err)
	}

	// Refused: plain, and another CA's certificate. Nothing is written.
	foreignCfg := tlsconf.Config{CAFile: ca.CertFile, VerifyOutgoing: true, Datacenter: "dc1", Domain: "consul"}
	ff := other.Cert(t, tlsconf.KindClient, "dc1")
	foreignCfg.CertFile, foreignCfg.KeyFile = ff.CertFile, ff.KeyFile
	foreign, err := tlsconf.New(foreignCfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{{"plain", nil}, {"other CA", foreign.OutgoingTLS("")}} {
		for _, p := range servers {
			var out structs.WriteResponse
			err := tlsCall(p.RPCAddr(), tc.cfg, structs.MethodKVSApply,
				&structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "tls/rogue-" + tc.name, Value: []byte("x")}}, &out)
			if err == nil {
				t.Fatalf("%s client wrote through %s", tc.name, p.Name)
			}
		}
	}
	var keys structs.IndexedKeyList
	if err := tlsCall(servers[0].RPCAddr(), good, structs.MethodKVSListKeys, &structs.KeyRequest{Key: "tls/"}, &keys); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys.Keys, ",") != "tls/ok" {
		t.Fatalf("keys under tls/ = %v, want only tls/ok", keys.Keys)
	}
	for _, p := range servers {
		if !strings.Contains(p.Log(), "verify_incoming requires TLS") {
			t.Fatalf("%s did not log the plain refusal", p.Name)
		}
	}

	// A forged vote over a plain connection: a far higher term from a
	// made-up peer. Under verify_incoming it never reaches raft.
	leader := leaderOf(servers[0])
	termBefore, err := raftTerm(servers[0])
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransport(plainRaftLayer{}, 1, 2*time.Second, nil)
	defer tr.Close()
	for _, p := range servers {
		var resp raft.RequestVoteResponse
		err := tr.RequestVote("forger", raft.ServerAddress(p.RPCAddr()), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("forger"), Addr: []byte("127.0.0.1:1")},
			Term:      termBefore + 200, LastLogIndex: 1 << 40, LastLogTerm: termBefore + 199,
		}, &resp)
		if err == nil {
			t.Fatalf("forged vote answered by %s: %+v", p.Name, resp)
		}
	}
	for _, p := range servers {
		term, err := raftTerm(p)
		if err != nil {
			t.Fatal(err)
		}
		if term != termBefore {
			t.Fatalf("%s term %d after the forged vote, was %d", p.Name, term, termBefore)
		}
		if l := leaderOf(p); l != leader {
			t.Fatalf("%s leader %q after the forged vote, was %q", p.Name, l, leader)
		}
	}

	// Rotation: new leaf certificates (same CA) written over the files of
	// every agent, then SIGHUP. Writes keep succeeding, and new TLS
	// connections see the new certificates.
	rotate := func(dst tlsconftest.Files, kind tlsconf.Kind) {
		n := ca.Cert(t, kind, "dc1")
		for _, pair := range [][2]string{{n.CertFile, dst.CertFile}, {n.KeyFile, dst.KeyFile}} {
			b, err := os.ReadFile(pair[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pair[1]+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(pair[1]+".tmp", pair[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	serialOf := func(p *agenttest.Proc) (string, error) {
		conn, err := net.DialTimeout("tcp", p.RPCAddr(), 2*time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte{rpc.ProtoTLS}); err != nil {
			return "", err
		}
		tc := tls.Client(conn, good)
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		return tc.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	before := map[string]string{}
	for _, p := range servers {
		s, err := serialOf(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p.Name] = s
	}
	for i, p := range servers {
		rotate(serverFiles[i], tlsconf.KindServer)
		p.Signal(syscall.SIGHUP)
		if _, err := e2ePut(hc, "http://"+client.HTTPAddr()+"/v1/kv/tls/rot-"+p.Name, []byte("v")); err != nil {
			t.Fatalf("write after rotating %s: %v", p.Name, err)
		}
	}
	rotate(clientFiles, tlsconf.KindClient)
	client.Signal(syscall.SIGHUP)
	for _, p := range append(servers, client) {
		p.WaitLog(10*time.Second, "TLS certificates reloaded")
	}
	for _, p := range servers {
		s, err := serialOf(p)
		if err != nil {
			t.Fatal(err)
		}
		if s == before[p.Name] {
			t.Fatalf("%s still presents its old certificate after SIGHUP", p.Name)
		}
	}
	for i := range 5 {
		if _, err := e2ePut(hc, "http://"+client.HTTPAddr()+"/v1/kv/tls/after-"+strconv.Itoa(i), []byte("v")); err != nil {
			t.Fatalf("write after rotating everything: %v", err)
		}
	}
	if l := leaderOf(servers[0]); l == "" {
		t.Fatal("no leader after the rotation")
	}
}

// TestTLSClientCertPosingAsServer: a "server" presenting a client
// certificate (client.dc1.consul) is refused by a client agent under
// verify_server_hostname, so DNS never gets an answer from it.
func TestTLSClientCertPosingAsServer(t *testing.T) {
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	ca := tlsconftest.NewCA(t)
	// The impostor presents a client certificate of the right CA and does
	// not verify its own outgoing connections.
	f := ca.Cert(t, tlsconf.KindClient, "dc1")
	impostorCfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(impostorCfg, "tls.json"), []byte(fmt.Sprintf(
		`{"tls":{"defaults":{"ca_file":%q,"cert_file":%q,"key_file":%q}}}`, ca.CertFile, f.CertFile, f.KeyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	impostor := startAgent(t, bin, "impostor", "--server", "--bootstrap-expect", "1", "--config-dir", impostorCfg)
	client := startAgent(t, bin, "victim", "--retry-join", impostor.SerfAddr(),
		"--config-dir", tlsAgentConfig(t, ca, ca.Cert(t, tlsconf.KindClient, "dc1"), false))
	client.WaitLog(30*time.Second, "server.dc1.consul")
	r, err := dnsA(client.DNSAddr(), "consul.service.consul.", 2*time.Second)
	if err == nil && len(answerAddrs(r)) > 0 {
		t.Fatalf("DNS answered from an impostor server: %v", r.Answer)
	}
}
