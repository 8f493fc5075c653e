package agent_test

// Multi-process proof of HTTPS on the API (issue 15 item 2): an agent with
// ports.https on and plain HTTP off (ports.http = -1) serves the official
// consul/api client and the CLI (flags and Consul's environment variables)
// over TLS, refuses API clients without a certificate under
// tls.https.verify_incoming, and serves a new certificate after SIGHUP.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/cairnd/cairn/cluster/tlsconf"
	"github.com/cairnd/cairn/cluster/tlsconf/tlsconftest"
	"github.com/hashicorp/consul/api"
)

// writeHTTPSConfig writes the agent's TLS block: the server certificate
// in tls.defaults and verify_incoming for HTTPS only.
func writeHTTPSConfig(t *testing.T, dir string, ca *tlsconftest.CA, f tlsconftest.Files) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"tls": map[string]any{
		"defaults": map[string]any{"ca_file": ca.CertFile, "cert_file": f.CertFile, "key_file": f.KeyFile},
		"https":    map[string]any{"verify_incoming": true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial number of the certificate addr presents.
func servedSerial(addr string, cfg *tls.Config) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestHTTPSE2E(t *testing.T) {
	bin := agenttest.Binary(t)
	ca := tlsconftest.NewCA(t)
	srvFiles := ca.Cert(t, tlsconf.KindServer, "dc1")
	cliFiles := ca.Cert(t, tlsconf.KindCLI, "dc1")
	cfgDir := t.TempDir()
	writeHTTPSConfig(t, cfgDir, ca, srvFiles)

	p := startAgent(t, bin, "https1", "--dev", "--config-dir", cfgDir, "--http-port=-1", "--https-port=0")
	if p.Ports.HTTP != 0 || p.Ports.HTTPS == 0 {
		t.Fatalf("ports = %+v: want HTTPS only", p.Ports)
	}
	addr := p.HTTPSAddr()

	// The official client, with a client certificate.
	client, err := api.NewClient(&api.Config{Address: addr, Scheme: "https", TLSConfig: api.TLSConfig{
		CAFile: ca.CertFile, CertFile: cliFiles.CertFile, KeyFile: cliFiles.KeyFile,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "tls/x", Value: []byte("secret-ok")}, nil); err != nil {
		t.Fatalf("kv put over https: %v", err)
	}

	// Without a client certificate the handshake fails and nothing is written.
	anon, err := api.NewClient(&api.Config{Address: addr, Scheme: "https", TLSConfig: api.TLSConfig{CAFile: ca.CertFile}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.KV().Put(&api.KVPair{Key: "tls/anon", Value: []byte("no")}, nil); err == nil {
		t.Fatal("kv put without a client certificate succeeded under verify_incoming")
	}
	if kv, _, err := client.KV().Get("tls/anon", nil); err != nil || kv != nil {
		t.Fatalf("tls/anon = %v, %v: want absent", kv, err)
	}

	// The CLI: Consul's variables, then Cairn's flags.
	cli := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	consulEnv := []string{"CONSUL_HTTP_ADDR=https://" + addr, "CONSUL_CACERT=" + ca.CertFile,
		"CONSUL_CLIENT_CERT=" + cliFiles.CertFile, "CONSUL_CLIENT_KEY=" + cliFiles.KeyFile}
	if out, err := cli(consulEnv, "kv", "get", "tls/x"); err != nil || out != "secret-ok" {
		t.Fatalf("cairn kv get with CONSUL_* = %q, %v", out, err)
	}
	if out, err := cli([]string{"CAIRN_HTTP_SSL=true"}, "kv", "get", "--http-addr", addr, "--ca-file", ca.CertFile,
		"--client-cert", cliFiles.CertFile, "--client-key", cliFiles.KeyFile, "--tls-server-name", "server.dc1.consul", "tls/x"); err != nil || out != "secret-ok" {
		t.Fatalf("cairn kv get with flags = %q, %v", out, err)
	}
	if out, err := cli(consulEnv[:2], "kv", "get", "tls/x"); err == nil {
		t.Fatalf("cairn kv get without a client certificate succeeded: %q", out)
	}
	if out, err := cli(nil, "kv", "get", "--http-addr", "https://"+addr, "--ca-file", filepath.Join(cfgDir, "missing.pem"), "tls/x"); err == nil || !strings.Contains(out, "--ca-file") {
		t.Fatalf("bad --ca-file: %q, %v: want an error naming the flag", out, err)
	}

	// Rotation: a new server certificate is served after SIGHUP.
	probe := &tls.Config{RootCAs: mustPool(t, ca.CertFile), ServerName: "localhost", Certificates: []tls.Certificate{mustPair(t, cliFiles)}}
	before, err := servedSerial(addr, probe)
	if err != nil {
		t.Fatal(err)
	}
	writeHTTPSConfig(t, cfgDir, ca, ca.Cert(t, tlsconf.KindServer, "dc1"))
	p.Signal(syscall.SIGHUP)
	testutil.Eventually(t, 10*time.Second, "the HTTPS certificate rotated by SIGHUP", func() error {
		after, err := servedSerial(addr, probe)
		if err == nil && after.Cmp(before) == 0 {
			err = errors.New("still the old certificate")
		}
		return err
	})
	if out, err := cli(consulEnv, "kv", "get", "tls/x"); err != nil || out != "secret-ok" {
		t.Fatalf("after rotation: cairn kv get = %q, %v", out, err)
	}
}

func mustPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pool, err := tlsconf.LoadCAs(file, "")
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func mustPair(t *testing.T, f tlsconftest.Files) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
