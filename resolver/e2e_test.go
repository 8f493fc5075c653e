package resolver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/miekg/dns"
)

// TestEndToEnd runs `cairn agent --dev`, registers a service through the
// HTTP API and asks the agent's DNS port over real UDP and TCP sockets:
// UDP trims to three answers with TC (enable_truncate from --config-dir),
// TCP returns all of them.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs the cairn binary")
	}
	ag := startDevAgent(t)
	// Registration works once the dev server has elected itself.
	const instances = 12
	testutil.Eventually(t, 10*time.Second, "the agent to accept registrations", func() error {
		ag.checkRunning(t)
		return ag.register(1)
	})
	for i := 2; i <= instances; i++ {
		if err := ag.register(i); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}

	addr := ag.addrs.DNS
	ask := func(network string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("e2e-web.service.consul.", qtype)
		r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s query: %v", network, err)
		}
		return r
	}
	// All instances visible over TCP (the catalog may lag the API briefly).
	var full *dns.Msg
	_ = testutil.Wait(t.Context(), 5*time.Second, func() error {
		if full = ask("tcp", dns.TypeA); len(full.Answer) != instances {
			return fmt.Errorf("%d answers", len(full.Answer))
		}
		return nil
	}) // checked in detail below
	if full.Rcode != dns.RcodeSuccess || len(full.Answer) != instances || full.Truncated {
		t.Fatalf("TCP A: rcode %s, %d answers, TC %v; want NOERROR, %d, false\n%v",
			dns.RcodeToString[full.Rcode], len(full.Answer), full.Truncated, instances, full)
	}
	seen := map[string]bool{}
	for _, rr := range full.Answer {
		a, ok := rr.(*dns.A)
		if !ok || !strings.HasPrefix(a.A.String(), "127.0.0.") {
			t.Fatalf("unexpected record %v", rr)
		}
		seen[a.A.String()] = true
	}
	if len(seen) != instances {
		t.Fatalf("TCP answer has %d distinct addresses, want %d", len(seen), instances)
	}

	udp := ask("udp", dns.TypeA)
	if udp.Rcode != dns.RcodeSuccess || len(udp.Answer) != 3 || !udp.Truncated {
		t.Fatalf("UDP A: rcode %s, %d answers, TC %v; want NOERROR, 3, true",
			dns.RcodeToString[udp.Rcode], len(udp.Answer), udp.Truncated)
	}

	srv := ask("tcp", dns.TypeSRV)
	if len(srv.Answer) != instances || len(srv.Extra) < instances {
		t.Fatalf("TCP SRV: %d answers, %d additional; want %d each", len(srv.Answer), len(srv.Extra), instances)
	}
	for _, rr := range srv.Answer {
		s := rr.(*dns.SRV)
		if s.Port < 8001 || s.Port > 8000+instances || !strings.HasSuffix(s.Target, ".node.dc1.consul.") {
			t.Fatalf("SRV record %v", s)
		}
	}

	nx := ask("udp", dns.TypeAAAA)
	if nx.Rcode != dns.RcodeSuccess || len(nx.Answer) != 0 || len(nx.Ns) != 1 {
		t.Fatalf("AAAA for IPv4-only service: %v", nx)
	}
}

// e2eAgent is the `cairn agent --dev` process TestEndToEnd asks.
type e2eAgent struct {
	addrs  struct{ DNS, HTTP string } // from its ready file
	logs   bytes.Buffer
	exited chan error
}

// startDevAgent builds cairn and runs a dev agent on port 0 with
// enable_truncate set, until its ready file names the bound addresses.
// It is stopped on cleanup, its output logged if the test failed.
func startDevAgent(t *testing.T) *e2eAgent {
	bin := filepath.Join(t.TempDir(), "cairn")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build ../cmd/cairn, skipping the end-to-end test: %v\n%s", err, lastLines(out, 10))
	}

	confDir, ready := t.TempDir(), filepath.Join(t.TempDir(), "ready.json")
	if err := os.WriteFile(filepath.Join(confDir, "dns.json"), []byte(`{"dns_config": {"enable_truncate": true}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"agent", "--dev", "--node", "e2e", "--client", "127.0.0.1",
		"--dns-port", "0", "--http-port", "0", "--server-port", "0", "--serf-lan-port", "0",
		"--serf-wan-port", "0", "--config-dir", confDir, "--ready-file", ready}
	ag := &e2eAgent{exited: make(chan error, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &ag.logs, &ag.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { ag.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ag.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-ag.exited
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", lastLines(ag.logs.Bytes(), 40))
		}
	})

	// The agent writes the ports the kernel gave it once it listens.
	testutil.Eventually(t, 30*time.Second, "the agent's ready file", func() error {
		ag.checkRunning(t)
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &ag.addrs)
	})
	return ag
}

// checkRunning fails the test if the agent has exited.
func (ag *e2eAgent) checkRunning(t *testing.T) {
	select {
	case e := <-ag.exited:
		t.Fatalf("agent exited: %v\n%s", e, lastLines(ag.logs.Bytes(), 40))
	default:
	}
}

// register registers instance i of e2e-web, on node e2e-n<i> at
// 127.0.0.<i+1>, port 8000+i.
func (ag *e2eAgent) register(i int) error {
	body := fmt.Sprintf(`{"Node":"e2e-n%d","Address":"127.0.0.%d","Service":{"Service":"e2e-web","Port":%d}}`, i, i+1, 8000+i)
	req, _ := http.NewRequest(http.MethodPut, "http://"+ag.addrs.HTTP+"/v1/catalog/register", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
