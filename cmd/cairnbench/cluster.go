package main

import (
	"context"
	"encoding/json"
	"errors"
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
}

// freePorts returns n distinct ports free for both TCP and UDP on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var (
		ports []int
		lns   []net.Listener
		pcs   []net.PacketConn
	)
	defer func() {
		for _, l := range lns {
			l.Close()
		}
		for _, p := range pcs {
			p.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("could not find free ports")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			l.Close()
			continue
		}
		lns, pcs = append(lns, l), append(pcs, pc)
		ports = append(ports, port)
	}
	return ports, nil
}

// startServers starts n server agents (--bootstrap-expect n) that join the
// first one's serf LAN port, with CAIRN_FAST_GOSSIP=1 (and CAIRN_PPROF=1
// when pprof is set) and the extra agent flags, and waits until they agree on a leader and the Raft
// configuration lists all n. Close stops them and removes their data.
func startServers(ctx context.Context, bin string, n int, pprof, keep bool, extra ...string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "cairnbench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, keep: keep}
	ports, err := freePorts(5 * n)
	if err != nil {
		c.Close()
		return nil, err
	}
	env := append(os.Environ(), "CAIRN_FAST_GOSSIP=1")
	if pprof {
		env = append(env, "CAIRN_PPROF=1")
	}
	for i := range n {
		p := ports[5*i:]
		a := &agentProc{
			name: fmt.Sprintf("s%d", i+1), dns: p[0], httpPort: p[1], server: p[2], serfLAN: p[3], serfW: p[4],
			done: make(chan struct{}),
		}
		a.dataDir = filepath.Join(dir, a.name)
		a.logPath = filepath.Join(dir, a.name+".log")
		args := []string{"agent", "--server", "--bootstrap-expect", strconv.Itoa(n),
			"--data-dir", a.dataDir, "--node", a.name, "--bind", "127.0.0.1", "--client", "127.0.0.1",
			"--dns-port", strconv.Itoa(a.dns), "--http-port", strconv.Itoa(a.httpPort),
			"--server-port", strconv.Itoa(a.server), "--serf-lan-port", strconv.Itoa(a.serfLAN),
			"--serf-wan-port", strconv.Itoa(a.serfW),
			"--retry-join", "127.0.0.1:" + strconv.Itoa(ports[3]), // s1's serf LAN
		}
		args = append(args, extra...)
		lf, err := os.Create(a.logPath)
		if err != nil {
			c.Close()
			return nil, err
		}
		a.cmd = exec.Command(bin, args...)
		a.cmd.Env = env
		a.cmd.Stdout, a.cmd.Stderr = lf, lf
		a.cmd.SysProcAttr = testutil.ChildProcAttr()
		if err := a.cmd.Start(); err != nil {
			lf.Close()
			c.Close()
			return nil, fmt.Errorf("start %s: %w", a.name, err)
		}
		go func() { a.cmd.Wait(); lf.Close(); close(a.done) }()
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

func (c *cluster) dumpLogs() {
	for _, a := range c.agents {
		b, _ := os.ReadFile(a.logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(os.Stderr, "---- tail of %s log ----\n%s\n", a.name, b)
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
