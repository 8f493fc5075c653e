package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// gossipCLITimeout bounds one CLI invocation in these tests.
const gossipCLITimeout = 60 * time.Second

// gossipCLI runs `cairn args...` against the agent at httpAddr and
// returns stdout, stderr and the exit code.
func gossipCLI(t *testing.T, bin, httpAddr string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gossipCLITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+httpAddr)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("cairn %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// gossipMembers parses `cairn members` into node → status.
func gossipMembers(t *testing.T, bin, httpAddr string, extra ...string) (map[string]string, string, error) {
	out, errOut, code := gossipCLI(t, bin, httpAddr, append([]string{"members"}, extra...)...)
	if code != 0 {
		return nil, out, fmt.Errorf("members exit %d: %s", code, errOut)
	}
	m := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue
		}
		m[f[0]] = f[2]
	}
	return m, out, nil
}

func waitMembers(t *testing.T, bin, httpAddr string, want map[string]string, timeout time.Duration) string {
	t.Helper()
	var last string
	testutil.Eventually(t, timeout, fmt.Sprintf("members %v", want), func() error {
		got, out, err := gossipMembers(t, bin, httpAddr)
		last = out
		if err != nil {
			return err
		}
		for n, s := range want {
			if got[n] != s {
				return fmt.Errorf("%s is %q, want %q\n%s", n, got[n], s, out)
			}
		}
		return nil
	})
	return last
}

// gossipConfigDir writes files into a fresh config dir.
func gossipConfigDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func gossipLeader(t *testing.T, bin string, servers []*agenttest.Proc) *agenttest.Proc {
	t.Helper()
	var leader *agenttest.Proc
	testutil.Eventually(t, 30*time.Second, "a leader", func() error {
		for _, s := range servers {
			if s.Exited() {
				continue
			}
			l := leaderAddr(s.RPCAddr())
			for _, c := range servers {
				if l == c.RPCAddr() && !c.Exited() {
					leader = c
					return nil
				}
			}
		}
		return errors.New("no leader yet")
	})
	return leader
}

// raftPeers runs `operator raft list-peers` and returns the node names.
func raftPeers(t *testing.T, bin, httpAddr string) ([]string, error) {
	out, errOut, code := gossipCLI(t, bin, httpAddr, "operator", "raft", "list-peers")
	if code != 0 {
		return nil, fmt.Errorf("list-peers exit %d: %s", code, errOut)
	}
	var nodes []string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			nodes = append(nodes, f[0])
		}
	}
	return nodes, nil
}

// checkLeftServer checks that after gone left, the other servers list
// exactly two Raft peers and still accept writes.
func checkLeftServer(t *testing.T, bin string, gone *agenttest.Proc, servers []*agenttest.Proc) {
	t.Helper()
	out, errOut, code := gossipCLI(t, bin, gone.HTTPAddr(), "leave")
	if code != 0 || !strings.Contains(out, "Graceful leave complete") {
		t.Fatalf("leave %s: exit %d\n%s%s", gone.Name, code, out, errOut)
	}
	testutil.Eventually(t, 20*time.Second, gone.Name+" exits after leave", func() error {
		if !gone.Exited() {
			return errors.New("still running")
		}
		return nil
	})
	var rest []*agenttest.Proc
	for _, s := range servers {
		if s != gone && !s.Exited() {
			rest = append(rest, s)
		}
	}
	gossipLeader(t, bin, rest)
	for _, s := range rest {
		testutil.Eventually(t, 20*time.Second, "raft configuration of 2 on "+s.Name, func() error {
			peers, err := raftPeers(t, bin, s.HTTPAddr())
			if err != nil {
				return err
			}
			if len(peers) != 2 || strings.Contains(strings.Join(peers, " "), gone.Name) {
				return fmt.Errorf("peers %v", peers)
			}
			return nil
		})
	}
	testutil.Eventually(t, 20*time.Second, "a write after "+gone.Name+" left", func() error {
		key := "after-leave/" + gone.Name
		if out, errOut, code := gossipCLI(t, bin, rest[0].HTTPAddr(), "kv", "put", key, "ok"); code != 0 {
			return fmt.Errorf("kv put: %s%s", out, errOut)
		}
		out, _, _ := gossipCLI(t, bin, rest[1].HTTPAddr(), "kv", "get", key)
		if strings.TrimSpace(out) != "ok" {
			return fmt.Errorf("kv get %q", out)
		}
		return nil
	})
	waitMembers(t, bin, rest[0].HTTPAddr(), map[string]string{gone.Name: "left"}, 20*time.Second)
}

// TestGossipCluster: 3 servers and 2 clients join; events reach every
// agent's watch handler; exec runs where enabled and is refused where
// not; reload with a broken file keeps the agent; a SIGKILLed client goes
// failed, force-leave makes it left and --prune forgets it; a non-leader
// server leaves gracefully and the cluster stays writable with 2 peers.
func TestGossipCluster(t *testing.T) {
	gc := startGossipCluster(t)
	checkGossipMembers(t, gc)
	// Steps in order, on the one cluster: the later ones kill c2 and make a
	// server leave.
	runSteps(t, gc, []step[*gossipCluster]{
		{"serf members metric", testGossipSerfMembersMetric},
		{"info", testGossipInfo},
		{"event reaches every agent", testGossipEvent},
		{"exec", testGossipExec},
		{"reload with a broken file", testGossipReloadBrokenFile},
		{"SIGHUP with a broken file", testGossipSIGHUPBrokenFile},
		{"monitor", testGossipMonitor},
		{"watch views", testGossipWatchViews},
		{"failed, force-leave, prune", testGossipFailedForceLeavePrune},
		{"graceful leave of a follower", testGossipGracefulLeave},
	})
}

// gossipCluster is TestGossipCluster's cluster: 3 servers and c1 with
// remote exec enabled, and c2 with the default (disabled), which joined by
// `cairn join`.
type gossipCluster struct {
	bin     string
	servers []*agenttest.Proc
	c1, c2  *agenttest.Proc
	c1Dir   string // c1's config dir
	all     []*agenttest.Proc
}

// startGossipCluster starts the agents, c2 joining by `cairn join`.
func startGossipCluster(t *testing.T) *gossipCluster {
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	rexecOn := `{"disable_remote_exec": false}`

	var servers []*agenttest.Proc
	for i := 1; i <= 3; i++ {
		args := []string{"--server", "--bootstrap-expect", "3", "--config-dir", gossipConfigDir(t, map[string]string{"rexec.json": rexecOn})}
		if i > 1 {
			args = append(args, "--retry-join", servers[0].SerfAddr())
		}
		servers = append(servers, agenttest.StartAgent(t, bin, "s"+strconv.Itoa(i), args...))
	}
	c1Dir := gossipConfigDir(t, map[string]string{"rexec.json": rexecOn})
	c1 := agenttest.StartAgent(t, bin, "c1", "--config-dir", c1Dir, "--retry-join", servers[1].SerfAddr())
	// c2 keeps the default: remote exec disabled. It joins by `cairn join`.
	c2 := agenttest.StartAgent(t, bin, "c2")
	all := append(append([]*agenttest.Proc{}, servers...), c1, c2)
	gossipLeader(t, bin, servers)
	testutil.Eventually(t, 20*time.Second, "c2's HTTP API", func() error {
		_, errOut, code := gossipCLI(t, bin, c2.HTTPAddr(), "members")
		if code != 0 {
			return errors.New(errOut)
		}
		return nil
	})
	if out, errOut, code := gossipCLI(t, bin, c2.HTTPAddr(), "join", servers[2].SerfAddr()); code != 0 || out != "Successfully joined cluster by contacting 1 nodes.\n" {
		t.Fatalf("join: exit %d %q %s", code, out, errOut)
	}
	if _, errOut, code := gossipCLI(t, bin, c2.HTTPAddr(), "join", "127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "Failed to join any nodes.") {
		t.Errorf("join of a dead address: exit %d %s", code, errOut)
	}
	return &gossipCluster{bin: bin, servers: servers, c1: c1, c2: c2, c1Dir: c1Dir, all: all}
}

// checkGossipMembers waits until every agent lists all five alive, then
// checks `cairn members` (plain, detailed and WAN).
func checkGossipMembers(t *testing.T, gc *gossipCluster) {
	bin, servers, c1, all := gc.bin, gc.servers, gc.c1, gc.all
	alive := map[string]string{"s1": "alive", "s2": "alive", "s3": "alive", "c1": "alive", "c2": "alive"}
	for _, p := range all {
		waitMembers(t, bin, p.HTTPAddr(), alive, 30*time.Second)
	}
	out := waitMembers(t, bin, c1.HTTPAddr(), alive, time.Second)
	t.Logf("cairn members:\n%s", out)
	if !strings.HasPrefix(out, "Node") || !strings.Contains(strings.Split(out, "\n")[0], "Protocol") {
		t.Fatalf("members header: %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 7 && f[0] != "Node" {
			wantType := map[bool]string{true: "server", false: "client"}[strings.HasPrefix(f[0], "s")]
			if f[3] != wantType || f[6] != "dc1" || f[5] != "2" {
				t.Errorf("members row %q: want type %s, protocol 2, dc dc1", line, wantType)
			}
		}
	}
	det, _, _ := gossipCLI(t, bin, servers[0].HTTPAddr(), "members", "-detailed")
	if !strings.Contains(det, "role=consul") || !strings.Contains(det, "role=node") || !strings.Contains(det, "dc=dc1") {
		t.Fatalf("members --detailed lacks Consul tags:\n%s", det)
	}
	// Servers of one datacenter flood-join each other on the WAN.
	wan := waitMembers(t, bin, servers[0].HTTPAddr(), nil, time.Second)
	testutil.Eventually(t, 20*time.Second, "every server in the WAN pool", func() error {
		m, out, err := gossipMembers(t, bin, servers[2].HTTPAddr(), "-wan")
		wan = out
		if err != nil {
			return err
		}
		for _, n := range []string{"s1.dc1", "s2.dc1", "s3.dc1"} {
			if m[n] != "alive" {
				return fmt.Errorf("%s is %q:\n%s", n, m[n], out)
			}
		}
		if len(m) != 3 {
			return fmt.Errorf("clients in the WAN pool:\n%s", out)
		}
		return nil
	})
	t.Logf("cairn members --wan:\n%s", wan)
}

func testGossipSerfMembersMetric(t *testing.T, gc *gossipCluster) {
	servers := gc.servers
	resp, err := http.Get("http://" + servers[0].HTTPAddr() + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, w := range []string{`cairn_serf_members{status="alive"} 5`, `cairn_serf_members{status="failed"} 0`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

func testGossipInfo(t *testing.T, gc *gossipCluster) {
	bin, servers := gc.bin, gc.servers
	out, errOut, code := gossipCLI(t, bin, servers[0].HTTPAddr(), "info")
	if code != 0 {
		t.Fatalf("info exit %d: %s", code, errOut)
	}
	for _, s := range []string{"agent:", "cairn:", "raft:", "serf_lan:", "serf_wan:", "runtime:", "\tgoroutines = ", "\tmembers = 5"} {
		if !strings.Contains(out, s) {
			t.Errorf("info lacks %q:\n%s", s, out)
		}
	}
}

func testGossipFailedForceLeavePrune(t *testing.T, gc *gossipCluster) {
	bin, servers, c2 := gc.bin, gc.servers, gc.c2
	c2.Kill()
	waitMembers(t, bin, servers[0].HTTPAddr(), map[string]string{"c2": "failed"}, 30*time.Second)
	if out, _, code := gossipCLI(t, bin, servers[0].HTTPAddr(), "members", "-status", "failed"); code != 0 || !strings.Contains(out, "\nc2 ") || strings.Contains(out, "\nc1 ") {
		t.Errorf("members --status failed (exit %d):\n%s", code, out)
	}
	// The leader's serfHealth check for c2 turns critical.
	testutil.Eventually(t, 20*time.Second, "c2 serfHealth critical", func() error {
		out, _, _ := gossipCLI(t, bin, servers[0].HTTPAddr(), "watch", "--type", "checks", "--state", "critical")
		if !strings.Contains(out, `"Node": "c2"`) {
			return fmt.Errorf("critical checks: %s", out)
		}
		return nil
	})
	if out, errOut, code := gossipCLI(t, bin, servers[0].HTTPAddr(), "force-leave", "c2"); code != 0 {
		t.Fatalf("force-leave: exit %d %s%s", code, out, errOut)
	}
	waitMembers(t, bin, servers[0].HTTPAddr(), map[string]string{"c2": "left"}, 20*time.Second)
	if out, errOut, code := gossipCLI(t, bin, servers[0].HTTPAddr(), "force-leave", "-prune", "c2"); code != 0 {
		t.Fatalf("force-leave --prune: exit %d %s%s", code, out, errOut)
	}
	testutil.Eventually(t, 20*time.Second, "c2 pruned", func() error {
		m, out, err := gossipMembers(t, bin, servers[0].HTTPAddr())
		if err != nil {
			return err
		}
		if _, ok := m["c2"]; ok {
			return fmt.Errorf("still listed:\n%s", out)
		}
		return nil
	})
}

func testGossipGracefulLeave(t *testing.T, gc *gossipCluster) {
	bin, servers := gc.bin, gc.servers
	leader := gossipLeader(t, bin, servers)
	var follower *agenttest.Proc
	for _, s := range servers {
		if s != leader {
			follower = s
		}
	}
	checkLeftServer(t, bin, follower, servers)
}

func s1HTTP(servers []*agenttest.Proc) string { return servers[0].HTTPAddr() }
