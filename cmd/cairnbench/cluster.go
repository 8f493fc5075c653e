package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/testutil"
)

// agentProc is one `cairn agent` process started by the bench.
type agentProc struct {
	name                                  string
	dns, httpPort, server, serfLAN, serfW int
	dataDir, logPath                      string
	cmd                                   *exec.Cmd
	done                                  chan struct{}
}

func (a *agentProc) httpAddr() string { return "127.0.0.1:" + strconv.Itoa(a.httpPort) }
func (a *agentProc) rpcAddr() string  { return "127.0.0.1:" + strconv.Itoa(a.server) }

// cluster is a set of server agents on loopback.
type cluster struct {
	dir    string
	keep   bool
	agents []*agentProc
	// key is the cluster's own gossip encryption key: agents of other
	// clusters on this machine (other benches, tests) cannot merge into
	// it. Without one, a stale serf member whose port a new agent reused
	// joined two clusters (seen: a foreign server won a raft election
	// mid-bench and writes were lost).
	key string
}

// agentReadyTimeout bounds an agent's start up to its ready file: it binds
// and writes at once, but a loaded CI machine can be slow.
const agentReadyTimeout = 60 * time.Second

// startAgent launches `cairn agent` named name in dir with args, port 0
// for every listener and a --ready-file, and returns once the ready file
// names the bound ports. The process is running (and must be stopped by
// the caller's cluster) unless an error is returned.
func startAgent(ctx context.Context, dir, bin, name string, env []string, args ...string) (*agentProc, error) {
	a := &agentProc{
		name:    name,
		dataDir: filepath.Join(dir, name),
		logPath: filepath.Join(dir, name+".log"),
		done:    make(chan struct{}),
	}
	readyFile := filepath.Join(dir, name+".ready.json")
	full := []string{"agent", "--data-dir", a.dataDir, "--node", name, "--bind", "127.0.0.1", "--client", "127.0.0.1",
		"--dns-port", "0", "--http-port", "0", "--server-port", "0", "--serf-lan-port", "0", "--serf-wan-port", "0",
		"--ready-file", readyFile,
	}
	lf, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(bin, append(full, args...)...)
	a.cmd.Env = env
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.cmd.SysProcAttr = testutil.ChildProcAttr()
	if err := a.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { a.cmd.Wait(); lf.Close(); close(a.done) }()
	if err := a.waitReady(ctx, readyFile); err != nil {
		a.cmd.Process.Kill()
		<-a.done
		return nil, fmt.Errorf("%w\n---- tail of %s log ----\n%s", err, name, a.logTail())
	}
	return a, nil
}

// waitReady reads the agent's ready file, {dns, http, server, serf_lan,
// serf_wan} as host:port (empty for a listener the agent does not run),
// into a's ports.
func (a *agentProc) waitReady(ctx context.Context, path string) error {
	var addrs struct {
		DNS     string `json:"dns"`
		HTTP    string `json:"http"`
		Server  string `json:"server"`
		SerfLAN string `json:"serf_lan"`
		SerfWAN string `json:"serf_wan"`
	}
	err := testutil.Wait(ctx, agentReadyTimeout, func() error {
		select {
		case <-a.done:
			return nil // checked below
		default:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &addrs)
	})
	if err != nil {
		return fmt.Errorf("%s not ready: %w", a.name, err)
	}
	select {
	case <-a.done:
		return fmt.Errorf("%s exited before it was ready: %v", a.name, a.cmd.ProcessState)
	default:
	}
	for _, f := range []struct {
		addr string
		dst  *int
	}{{addrs.DNS, &a.dns}, {addrs.HTTP, &a.httpPort}, {addrs.Server, &a.server}, {addrs.SerfLAN, &a.serfLAN}, {addrs.SerfWAN, &a.serfW}} {
		if f.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(f.addr)
		if err != nil {
			return fmt.Errorf("%s ready file: %w", a.name, err)
		}
		if *f.dst, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("%s ready file: address %q: %w", a.name, f.addr, err)
		}
	}
	return nil
}

// startServers starts n server agents (--bootstrap-expect n), the first
// alone and the others joined to its serf LAN port, with
// CAIRN_FAST_GOSSIP=1 (and CAIRN_PPROF=1 when pprof is set), and waits
// until they agree on a leader and the Raft configuration lists all n.
// extra flags go to every server. Close stops them and removes their data.
func startServers(ctx context.Context, bin string, n int, pprof, keep bool, extra ...string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "cairnbench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, keep: keep, key: gossip.NewKey()}
	env := append(os.Environ(), "CAIRN_FAST_GOSSIP=1")
	if pprof {
		env = append(env, "CAIRN_PPROF=1")
	}
	for i := range n {
		args := []string{"--server", "--bootstrap-expect", strconv.Itoa(n), "--encrypt", c.key}
		if i > 0 {
			args = append(args, "--retry-join", "127.0.0.1:"+strconv.Itoa(c.agents[0].serfLAN))
		}
		a, err := startAgent(ctx, dir, bin, fmt.Sprintf("s%d", i+1), env, append(args, extra...)...)
		if err != nil {
			c.dumpLogs()
			c.Close()
			return nil, err
		}
		c.agents = append(c.agents, a)
	}
	logf("started %d servers in %s; waiting for a leader", n, dir)
	if err := c.waitLeader(ctx, 60*time.Second); err != nil {
		c.dumpLogs()
		c.Close()
		return nil, err
	}
	return c, nil
}

// startBenchCluster starts the 3-server cluster of a benchmark (with
// pprof when profiling) and finds its leader; the caller closes it.
func startBenchCluster(ctx context.Context, o *Options) (*cluster, *agentProc, error) {
	c, err := startServers(ctx, o.Bin, 3, o.ProfileDir != "", o.KeepLogs)
	if err != nil {
		return nil, nil, err
	}
	leader, err := c.leader(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, leader, nil
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// waitLeader polls every agent's /v1/status/leader until all name the same
// leader and its /v1/operator/raft/configuration lists every server.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, a := range c.agents {
			select {
			case <-a.done:
				return fmt.Errorf("%s exited early: %v", a.name, a.cmd.ProcessState)
			default:
			}
		}
		last = c.leaderAgreed(ctx)
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no agreed leader after %v: %v", timeout, last)
}

func (c *cluster) leaderAgreed(ctx context.Context) error {
	var leader string
	for _, a := range c.agents {
		var l string
		if err := getJSON(ctx, "http://"+a.httpAddr()+"/v1/status/leader", &l); err != nil {
			return err
		}
		if l == "" {
			return fmt.Errorf("%s: no leader", a.name)
		}
		if leader != "" && l != leader {
			return fmt.Errorf("leaders disagree: %s vs %s", leader, l)
		}
		leader = l
	}
	var cfg struct{ Servers []json.RawMessage }
	if err := getJSON(ctx, "http://"+c.agents[0].httpAddr()+"/v1/operator/raft/configuration", &cfg); err != nil {
		return err
	}
	if len(cfg.Servers) != len(c.agents) {
		return fmt.Errorf("raft configuration has %d servers, want %d", len(cfg.Servers), len(c.agents))
	}
	return nil
}

// leader returns the agent that is the current Raft leader.
func (c *cluster) leader(ctx context.Context) (*agentProc, error) {
	var l string
	if err := getJSON(ctx, "http://"+c.agents[0].httpAddr()+"/v1/status/leader", &l); err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(l)
	if err != nil {
		return nil, fmt.Errorf("leader %q: %w", l, err)
	}
	for _, a := range c.agents {
		if strconv.Itoa(a.server) == port {
			return a, nil
		}
	}
	return nil, fmt.Errorf("leader %s is none of ours", l)
}

// profile fetches a CPU profile of d from a's /debug/pprof (CAIRN_PPROF=1)
// into path.
func profile(ctx context.Context, a *agentProc, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.httpAddr(), int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// profilePhase, when dir is set, profiles the leader for about d in the
// background; wait blocks until the profile is written.
func profilePhase(ctx context.Context, dir string, a *agentProc, d time.Duration, name string) (wait func()) {
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("profile: %v", err)
		return func() {}
	}
	secs := max(1, int((d - time.Second).Seconds()))
	path := filepath.Join(dir, name+".pprof")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := profile(ctx, a, time.Duration(secs)*time.Second, path); err != nil {
			logf("profile %s: %v", name, err)
			return
		}
		logf("leader CPU profile of %s: %s (go tool pprof -top %s %s)", name, path, "<bin>", path)
	}()
	return func() { <-done }
}

// logTail returns the last 4000 bytes of a's log.
func (a *agentProc) logTail() []byte {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return b
}

func (c *cluster) dumpLogs() {
	for _, a := range c.agents {
		fmt.Fprintf(os.Stderr, "---- tail of %s log ----\n%s\n", a.name, a.logTail())
	}
}

// Close stops every agent (SIGTERM, then SIGKILL after 10 s) and removes
// the data dirs unless keep.
func (c *cluster) Close() {
	for _, a := range c.agents {
		if a.cmd != nil && a.cmd.Process != nil {
			a.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, a := range c.agents {
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			a.cmd.Process.Kill()
			<-a.done
		}
	}
	if c.keep {
		logf("kept agent data and logs in %s", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}
