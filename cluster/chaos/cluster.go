package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// Node addresses: each server owns one loopback address and Consul's
// default ports on it, so no port is ever drawn and a node keeps its
// address across restarts. Lane 0 is 127.0.0.31–33; lane k (`make chaos`
// with CHAOS_PARALLEL) is 127.0.0.(31+10k)–(33+10k). No other test here
// uses those addresses.
const (
	nodeIPBase  = 31 // lane 0: s1 = 127.0.0.31, s2 = .32, s3 = .33
	laneStride  = 10 // lane k's addresses are nodeIPBase+laneStride*k+i
	maxLanes    = 7  // lanes 0–6: 127.0.0.31–93
	httpPort    = 8500
	dnsPort     = 8600
	serverPort  = 8300
	serfLANPort = 8301
	serfWANPort = 8302

	// uidBase: with root, node i runs as uid uidBase+i so the firewall can
	// tell its packets apart (see firewall.go). Uids need no passwd entry.
	uidBase = 60030

	// startTimeout bounds a cluster's first leader election, including
	// serf join and bootstrap-expect.
	startTimeout = 60 * time.Second
	// buildTimeout bounds `go build ./cmd/cairn`.
	buildTimeout = 5 * time.Minute
)

// Node is one `cairn agent --server` process on its own loopback address.
type Node struct {
	Name    string
	IP      string
	UID     int // 0: run as the harness's own user
	DataDir string
	LogPath string

	bin  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	starts int
}

// HTTPAddr is host:port of the node's HTTP API.
func (n *Node) HTTPAddr() string { return n.IP + ":" + strconv.Itoa(httpPort) }

// RPCAddr is host:port of the node's server RPC (and Raft) port, as
// /v1/status/leader names it.
func (n *Node) RPCAddr() string { return n.IP + ":" + strconv.Itoa(serverPort) }

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("chaos: %s already running", n.Name)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	n.starts++
	fmt.Fprintf(f, "{\"level\":\"info\",\"logger\":\"chaos\",\"msg\":\"harness: start #%d\",\"ts\":%q}\n", n.starts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "CAIRN_FAST_GOSSIP=1", "GOMAXPROCS=2")
	// Own process group: a ^C to `go test` must not also stop the nodes
	// before the harness has undone its faults. Pdeathsig: a harness that
	// dies without its cleanup (test timeout, kill -9) takes them along.
	cmd.SysProcAttr = testutil.ChildProcAttr()
	cmd.SysProcAttr.Setpgid = true
	if n.UID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(n.UID), Gid: uint32(n.UID)}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done, n.paused = cmd, done, false
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone. A no-op when
// the node is not running.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd, n.done, n.paused = nil, nil, false
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// WaitExit waits up to timeout for the process to end by itself (a
// graceful leave), then reaps it so Restart can start it again.
func (n *Node) WaitExit(timeout time.Duration) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("chaos: %s still running %v after leave", n.Name, timeout)
	}
	n.mu.Lock()
	n.cmd, n.done, n.paused = nil, nil, false
	n.mu.Unlock()
	return nil
}

// Restart starts a killed node again on the same data dir and address.
func (n *Node) Restart() error { return n.start() }

// Running reports whether the node's process is alive (paused counts).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP, true) }

// Resume sends SIGCONT to a paused node; a no-op otherwise.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("chaos: %s is not running", n.Name)
	}
	if !paused && !n.paused {
		return nil
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal %s: %w", n.Name, err)
	}
	n.paused = paused
	return nil
}

// Cluster is three server nodes started from one binary.
type Cluster struct {
	Nodes []*Node
	Dir   string // data dirs and logs live under it
	http  *http.Client
}

// buildBinary compiles cmd/cairn into dir (CAIRN_TEST_BINARY overrides).
func buildBinary(dir string) (string, error) {
	if p := os.Getenv("CAIRN_TEST_BINARY"); p != "" {
		return p, nil
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "cairn")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/cairn")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/cairn: %v\n%s", err, b)
	}
	return out, nil
}

// newCluster lays out three nodes of lane under dir; separateUIDs runs
// each as its own uid (needs root) so the firewall can partition them.
func newCluster(bin, dir string, lane int, separateUIDs bool) (*Cluster, error) {
	if lane < 0 || lane >= maxLanes {
		return nil, fmt.Errorf("chaos: lane %d out of range 0–%d", lane, maxLanes-1)
	}
	base := nodeIPBase + laneStride*lane
	// net/http repeats a request on a dead keep-alive connection only for
	// idempotent methods; every write here is a PUT, so the harness never
	// resubmits a write itself.
	c := &Cluster{Dir: dir, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	for i := 0; i < 3; i++ {
		n := &Node{
			Name:    "s" + strconv.Itoa(i+1),
			IP:      fmt.Sprintf("127.0.0.%d", base+i),
			bin:     bin,
			LogPath: filepath.Join(dir, fmt.Sprintf("s%d.log", i+1)),
			DataDir: filepath.Join(dir, fmt.Sprintf("s%d-data", i+1)),
		}
		if separateUIDs {
			n.UID = uidBase + base + i
		}
		if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
			return nil, err
		}
		if n.UID != 0 {
			if err := os.Chown(n.DataDir, n.UID, n.UID); err != nil {
				return nil, err
			}
		}
		n.args = []string{"agent", "--server", "--bootstrap-expect", "3",
			"--node", n.Name, "--bind", n.IP, "--client", n.IP,
			"--data-dir", n.DataDir, "--log-level", "debug", "--log-json",
			"--http-port", strconv.Itoa(httpPort), "--dns-port", strconv.Itoa(dnsPort),
			"--server-port", strconv.Itoa(serverPort), "--serf-lan-port", strconv.Itoa(serfLANPort),
			"--serf-wan-port", strconv.Itoa(serfWANPort),
		}
		// Each node joins the two others: a node that restarts (kill,
		// membership-change) must reach the cluster, not only itself (a
		// join to its own address succeeds and ends retry-join alone).
		for j := 0; j < 3; j++ {
			if j != i {
				n.args = append(n.args, "--retry-join", fmt.Sprintf("127.0.0.%d:%d", base+j, serfLANPort))
			}
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// Start launches every node and waits until all agree on a leader.
func (c *Cluster) Start(ctx context.Context) error {
	// Fixed ports: say plainly when something already holds one, rather
	// than letting the nodes fail to bind and the start time out.
	for _, n := range c.Nodes {
		for _, port := range []int{httpPort, serverPort} {
			addr := net.JoinHostPort(n.IP, strconv.Itoa(port))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("chaos: %s is taken (a node left over from an interrupted chaos run? see `ss -ltnp`): %w", addr, err)
			}
			l.Close()
		}
	}
	for _, n := range c.Nodes {
		if err := n.start(); err != nil {
			return err
		}
	}
	return c.WaitHealthy(ctx, startTimeout)
}

// Stop kills every node (SIGKILL works on stopped processes too).
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// NodeByRPC maps an RPC address (as /v1/status/leader reports) to a node.
func (c *Cluster) NodeByRPC(addr string) *Node {
	for _, n := range c.Nodes {
		if n.RPCAddr() == addr {
			return n
		}
	}
	return nil
}

// leaderOf asks n whom it believes leads ("" for none).
func (c *Cluster) leaderOf(ctx context.Context, n *Node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var leader string
	if _, err := c.getJSON(ctx, n, "/v1/status/leader", &leader); err != nil {
		return "", err
	}
	return leader, nil
}

// Leader returns the node every running node names as leader, or an error.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	first := ""
	for _, n := range c.Nodes {
		l, err := c.leaderOf(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		if l == "" {
			return nil, fmt.Errorf("%s sees no leader", n.Name)
		}
		if first != "" && l != first {
			return nil, fmt.Errorf("leaders disagree: %s vs %s", first, l)
		}
		first = l
	}
	if ln := c.NodeByRPC(first); ln != nil {
		return ln, nil
	}
	return nil, fmt.Errorf("leader %q is none of ours", first)
}

// WaitHealthy waits until every node is up and all agree on one leader
// that answers a consistent read.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return testutil.Wait(ctx, timeout, func() error {
		l, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var out any
		_, err = c.getJSON(rctx, l, "/v1/catalog/nodes?consistent", &out)
		return err
	})
}

// getJSON GETs path from n and decodes a 200 body into out. It returns
// the status code; 404 is not an error (KV misses are 404).
func (c *Cluster) getJSON(ctx context.Context, n *Node, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr()+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			return resp.StatusCode, fmt.Errorf("GET %s: decode: %w", path, err)
		}
		return resp.StatusCode, nil
	case http.StatusNotFound:
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(buf.String()))
}

// call sends one request without a body to n and returns the status and
// body; any answer but 200 is an error naming both.
func (c *Cluster) call(ctx context.Context, n *Node, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.HTTPAddr()+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s on %s: %d %s", method, path, n.Name, resp.StatusCode, strings.TrimSpace(buf.String()))
	}
	return buf.Bytes(), nil
}

// voters returns the Raft IDs in n's view of the Raft configuration.
func (c *Cluster) voters(ctx context.Context, n *Node) ([]string, error) {
	var cfg struct {
		Servers []struct {
			ID    string
			Voter bool
		}
	}
	if _, err := c.getJSON(ctx, n, "/v1/operator/raft/configuration?stale", &cfg); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range cfg.Servers {
		if s.Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// put PUTs body to path on n and decodes the JSON answer (true/false).
func (c *Cluster) put(ctx context.Context, n *Node, path string, body []byte) (bool, error) {
	var ok bool
	err := c.putJSON(ctx, n, path, body, &ok)
	return ok, err
}

// putJSON PUTs body to path on n and decodes a 200 answer into out.
func (c *Cluster) putJSON(ctx context.Context, n *Node, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+n.HTTPAddr()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %d %s", path, resp.StatusCode, strings.TrimSpace(buf.String()))
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("PUT %s: decode %q: %w", path, buf.String(), err)
	}
	return nil
}

// logLine is the part of a zap JSON log line the log check reads.
type logLine struct {
	Level  string `json:"level"`
	Logger string `json:"logger"`
	Msg    string `json:"msg"`
	Error  string `json:"error"`
}

// errorLines returns the node's log lines at error level or worse, and
// any line that is not JSON (a panic or a Go runtime fatal error).
func (n *Node) errorLines() ([]string, error) {
	f, err := os.Open(n.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			out = append(out, line)
			continue
		}
		switch l.Level {
		case "error", "dpanic", "panic", "fatal":
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
