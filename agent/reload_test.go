package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnd/cairn/agent"
	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/testutil"
)

// inProcessAgent starts an agent inside the test process (so -race sees
// it), every listener on a port the kernel picks, reading its
// configuration from dir like `cairn agent --config-dir dir` would, with
// flags set by apply. It returns the agent and its bound addresses.
func inProcessAgent(t *testing.T, dir, node string, apply func(*config.Config)) (*agent.Agent, agent.Addrs) {
	t.Helper()
	opts := agent.Options{ConfigDirs: []string{dir}, Apply: func(c *config.Config) {
		c.NodeName = node
		c.BindAddr = "127.0.0.1"
		c.Ports = config.Ports{HTTPS: config.PortDisabled} // config.PortAny for every listener but HTTPS (off)
		apply(c)
	}}
	cfg, err := config.Load(opts.ConfigDirs, opts.Apply)
	if err != nil {
		t.Fatal(err)
	}
	logger, mon, err := agent.NewLogger("error", false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, opts, logger, mon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close %s: %v", node, err)
		}
	})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addrs := a.Addrs()
	bound := map[string]string{"dns": addrs.DNS, "http": addrs.HTTP, "serf_lan": addrs.SerfLAN}
	if cfg.Server {
		bound["server"], bound["serf_wan"] = addrs.Server, addrs.SerfWAN
	}
	for what, addr := range bound {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			t.Fatalf("%s: bound %s address %q: want host:port with a real port (%v)", node, what, addr, err)
		}
	}
	return a, addrs
}

func writeMeta(t *testing.T, dir string, meta map[string]string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"node_meta": meta})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".meta.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "meta.json")); err != nil {
		t.Fatal(err)
	}
}

func httpGet(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return b, nil
}

// catalogMeta reads node's meta from the catalog through the agent at base.
func catalogMeta(hc *http.Client, base, node string) (map[string]string, error) {
	b, err := httpGet(hc, base+"/v1/catalog/node/"+node)
	if err != nil {
		return nil, err
	}
	var out struct {
		Node struct{ Meta map[string]string }
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out.Node.Meta, nil
}

// hammer runs HTTP and DNS clients against the agent at addrs until the
// returned stop is called; stop returns the first error they saw.
func hammer(addrs agent.Addrs, node string) (stop func() error) {
	const readersEach = 2
	hc := &http.Client{Timeout: 5 * time.Second}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	// Handlers that read the agent's datacenter, node name and meta.
	paths := []string{"/v1/agent/self", "/v1/agent/members", "/v1/catalog/nodes", "/v1/agent/services",
		"/v1/health/service/consul", "/v1/catalog/node/" + node, "/v1/kv/reload-test?recurse"}
	names := []string{"consul.service.consul.", node + ".node.consul.", "nope.service.consul."}
	for i := range readersEach {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := i; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				resp, err := hc.Get("http://" + addrs.HTTP + paths[n%len(paths)])
				if err != nil {
					report(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 { // 404 of the absent KV key is fine
					report(fmt.Errorf("GET %s: %s", resp.Request.URL, resp.Status))
				}
			}
		}()
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 2 * time.Second}
			for n := i; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion(names[n%len(names)], dns.TypeA)
				if _, _, err := c.Exchange(m, addrs.DNS); err != nil {
					report(fmt.Errorf("dns: %w", err))
				}
			}
		}()
	}
	return func() error {
		close(done)
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
			return nil
		}
	}
}

// reloadUnderTraffic reloads node_meta (written to dir) 20 times while
// HTTP and DNS clients hammer the agent, then checks that the last
// node_meta reached the catalog and /v1/agent/self. Under -race no read of
// the configuration may race a reload.
func reloadUnderTraffic(t *testing.T, a *agent.Agent, addrs agent.Addrs, dir, node string) {
	t.Helper()
	const reloads = 20
	stop := hammer(addrs, node)
	var want map[string]string
	for gen := 1; gen <= reloads; gen++ {
		want = map[string]string{"gen": strconv.Itoa(gen)}
		writeMeta(t, dir, want)
		if err := a.Reload(context.Background()); err != nil {
			stop()
			t.Fatalf("reload %d: %v", gen, err)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("traffic during reloads: %v", err)
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + addrs.HTTP
	testutil.Eventually(t, 20*time.Second, "the reloaded node_meta in the catalog", func() error {
		got, err := catalogMeta(hc, base, node)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("catalog meta %v, want %v", got, want)
		}
		return nil
	})
	b, err := httpGet(hc, base+"/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	var self struct{ Meta map[string]string }
	if err := json.Unmarshal(b, &self); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(self.Meta, want) {
		t.Errorf("/v1/agent/self Meta = %v, want %v", self.Meta, want)
	}
}

func waitLeader(t *testing.T, httpAddr string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	testutil.Eventually(t, 30*time.Second, "a leader", func() error {
		b, err := httpGet(hc, "http://"+httpAddr+"/v1/status/leader")
		if err != nil {
			return err
		}
		if string(b) == `""` {
			return fmt.Errorf("no leader yet")
		}
		return nil
	})
}

// TestReloadUnderTraffic: a --dev server agent, in process.
func TestReloadUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir, map[string]string{"gen": "0"})
	a, addrs := inProcessAgent(t, dir, "inproc", func(c *config.Config) { c.Dev = true })
	waitLeader(t, addrs.HTTP)
	reloadUnderTraffic(t, a, addrs, dir, "inproc")
}

// TestClientReloadUnderTraffic: a client agent joined to a server, both in
// process; the client's gossip loop, cache, forwarder and syncer run
// while it reloads.
func TestClientReloadUnderTraffic(t *testing.T) {
	_, srv := inProcessAgent(t, t.TempDir(), "srv", func(c *config.Config) { c.Dev = true })
	waitLeader(t, srv.HTTP)
	dir := t.TempDir()
	writeMeta(t, dir, map[string]string{"gen": "0"})
	a, addrs := inProcessAgent(t, dir, "cli", func(c *config.Config) {
		c.RetryJoin = []string{srv.SerfLAN}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	testutil.Eventually(t, 30*time.Second, "the client registered through the server", func() error {
		_, err := catalogMeta(hc, "http://"+srv.HTTP, "cli")
		return err
	})
	reloadUnderTraffic(t, a, addrs, dir, "cli")
}
