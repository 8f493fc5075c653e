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

// inProcessDev starts a --dev agent inside the test process (so -race
// sees it), every listener on a port the kernel picks, reading its
// configuration from dir like `cairn agent --dev --config-dir dir` would.
// It returns the agent and its bound addresses.
func inProcessDev(t *testing.T, dir string) (*agent.Agent, agent.Addrs) {
	t.Helper()
	opts := agent.Options{ConfigDirs: []string{dir}, Apply: func(c *config.Config) {
		c.Dev = true
		c.NodeName = "inproc"
		c.Ports = config.Ports{} // config.PortAny for every listener
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addrs := a.Addrs()
	for what, addr := range map[string]string{"dns": addrs.DNS, "http": addrs.HTTP, "server": addrs.Server, "serf_lan": addrs.SerfLAN, "serf_wan": addrs.SerfWAN} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			t.Fatalf("bound %s address %q: want host:port with a real port (%v)", what, addr, err)
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

// TestReloadUnderTraffic reloads node_meta while HTTP and DNS clients hammer
// the agent: under -race no read of the configuration may race the reload,
// and the last node_meta reaches the catalog (the anti-entropy syncer gets
// it pushed, it does not keep the copy it had at start).
func TestReloadUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	writeMeta(t, dir, map[string]string{"gen": "0"})
	a, addrs := inProcessDev(t, dir)
	httpAddr, dnsAddr := addrs.HTTP, addrs.DNS
	hc := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + httpAddr
	testutil.Eventually(t, 30*time.Second, "a leader", func() error {
		b, err := httpGet(hc, base+"/v1/status/leader")
		if err != nil {
			return err
		}
		if string(b) == `""` {
			return fmt.Errorf("no leader yet")
		}
		return nil
	})

	const (
		reloads     = 20
		readersEach = 2
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	paths := []string{"/v1/agent/self", "/v1/agent/members", "/v1/catalog/nodes", "/v1/agent/services",
		"/v1/health/service/consul", "/v1/catalog/node/inproc", "/v1/kv/reload-test?recurse"}
	for i := range readersEach {
		wg.Add(2)
		go func() { // HTTP reader: handlers read the agent's datacenter, node, meta
			defer wg.Done()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(base + paths[n%len(paths)])
				if err != nil {
					report(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		go func() { // DNS reader
			defer wg.Done()
			c := &dns.Client{Timeout: 2 * time.Second}
			names := []string{"consul.service.consul.", "inproc.node.consul.", "nope.service.consul."}
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion(names[n%len(names)], dns.TypeA)
				if _, _, err := c.Exchange(m, dnsAddr); err != nil {
					report(fmt.Errorf("dns: %w", err))
				}
			}
		}()
	}
	var want map[string]string
	for gen := 1; gen <= reloads; gen++ {
		want = map[string]string{"gen": strconv.Itoa(gen)}
		writeMeta(t, dir, want)
		if err := a.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", gen, err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Errorf("traffic during reloads: %v", err)
	default:
	}

	testutil.Eventually(t, 20*time.Second, "the reloaded node_meta in the catalog", func() error {
		b, err := httpGet(hc, base+"/v1/catalog/node/inproc")
		if err != nil {
			return err
		}
		var out struct {
			Node struct{ Meta map[string]string }
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return err
		}
		if !maps.Equal(out.Node.Meta, want) {
			return fmt.Errorf("catalog meta %v, want %v", out.Node.Meta, want)
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
