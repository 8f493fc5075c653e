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
	"syscall"
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

	t.Run("serf members metric", func(t *testing.T) {
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
	})

	t.Run("info", func(t *testing.T) {
		out, errOut, code := gossipCLI(t, bin, servers[0].HTTPAddr(), "info")
		if code != 0 {
			t.Fatalf("info exit %d: %s", code, errOut)
		}
		for _, s := range []string{"agent:", "cairn:", "raft:", "serf_lan:", "serf_wan:", "runtime:", "\tgoroutines = ", "\tmembers = 5"} {
			if !strings.Contains(out, s) {
				t.Errorf("info lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("event reaches every agent", func(t *testing.T) {
		files := map[*agenttest.Proc]string{}
		for _, p := range all {
			f := filepath.Join(t.TempDir(), "events")
			files[p] = f
			ctx, cancel := context.WithCancel(context.Background())
			cmd := exec.CommandContext(ctx, bin, "watch", "-type", "event", "-name", "deploy", "cat >> "+f)
			cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+p.HTTPAddr())
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); cmd.Wait() })
		}
		// Each watch runs its handler once with the current (empty) list
		// first; wait for that, so the event is a change each sees.
		for p, f := range files {
			testutil.Eventually(t, 20*time.Second, "initial watch run on "+p.Name, func() error {
				if _, err := os.Stat(f); err != nil {
					return err
				}
				return nil
			})
		}
		// Consul's one-dash spelling, as scripts write it.
		out, errOut, code := gossipCLI(t, bin, c1.HTTPAddr(), "event", "-name", "deploy", "v42")
		if code != 0 || !strings.HasPrefix(out, "Event ID: ") {
			t.Fatalf("event: exit %d %s%s", code, out, errOut)
		}
		id := strings.TrimSpace(strings.TrimPrefix(out, "Event ID: "))
		fired := time.Now()
		t.Cleanup(func() {
			if !t.Failed() {
				return
			}
			t.Logf("fired at %s", fired.UTC().Format("15:04:05.000"))
			for _, p := range all {
				for _, l := range strings.Split(p.Log(), "\n") {
					if strings.Contains(l, "deploy") {
						t.Logf("%s: %s", p.Name, l)
					}
				}
			}
		})
		for p, f := range files {
			testutil.Eventually(t, 20*time.Second, "event seen by the watch on "+p.Name, func() error {
				b, _ := os.ReadFile(f)
				if !strings.Contains(string(b), id) || !strings.Contains(string(b), `"Name": "deploy"`) {
					return fmt.Errorf("handler input so far: %s", b)
				}
				return nil
			})
			t.Logf("%s's watch handler saw the event after %v", p.Name, time.Since(fired).Round(time.Millisecond))
		}

	})

	t.Run("exec", func(t *testing.T) {
		host, _ := os.Hostname()
		out, errOut, code := gossipCLI(t, bin, s1HTTP(servers), "exec", "-wait", "3s", "uname -n")
		t.Logf("cairn exec 'uname -n' (exit %d):\n%s%s", code, out, errOut)
		for _, n := range []string{"s1", "s2", "s3", "c1"} {
			if !strings.Contains(out, "    "+n+": "+host+"\n") {
				t.Errorf("exec: no output line from %s", n)
			}
			if !strings.Contains(out, "==> "+n+": finished with exit code 0\n") {
				t.Errorf("exec: no exit code from %s", n)
			}
		}
		if !strings.Contains(out, "==> c2: refused: remote exec is disabled on c2") {
			t.Errorf("exec: c2 did not report its refusal")
		}
		if !strings.Contains(out, "5 / 5 node(s) completed / acknowledged") {
			t.Errorf("exec: summary missing")
		}
		if code != 2 {
			t.Errorf("exec exit %d, want 2 (a node refused)", code)
		}
		if t.Failed() {
			for _, p := range all {
				for _, l := range strings.Split(p.Log(), "\n") {
					if strings.Contains(l, "_rexec") || strings.Contains(l, "remote exec") {
						t.Logf("%s: %s", p.Name, l)
					}
				}
			}
		}
		out, _, code = gossipCLI(t, bin, c1.HTTPAddr(), "exec", "--node", "^c1$", "--wait", "1s", "echo out; echo err >&2; exit 3")
		if code != 2 || !strings.Contains(out, "    c1: out\n") || !strings.Contains(out, "    c1: err\n") ||
			!strings.Contains(out, "==> c1: finished with exit code 3") || !strings.Contains(out, "1 / 1 node(s)") {
			t.Errorf("exec on c1 (exit %d):\n%s", code, out)
		}
		// Consul's "-": the script comes from stdin.
		ctx, cancel := context.WithTimeout(context.Background(), gossipCLITimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "exec", "-node", "^s2$", "-wait", "1s", "-")
		cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+c1.HTTPAddr())
		cmd.Stdin = strings.NewReader("x=scripted\necho $x\n")
		b, err := cmd.Output()
		if err != nil || !strings.Contains(string(b), "    s2: scripted\n") || !strings.Contains(string(b), "==> s2: finished with exit code 0") {
			t.Errorf("exec - (err %v):\n%s", err, b)
		}
		// The job tree is cleaned up.
		if out, _, _ := gossipCLI(t, bin, c1.HTTPAddr(), "kv", "get", "--recurse", "_rexec/"); strings.TrimSpace(out) != "" {
			t.Errorf("job tree left behind:\n%s", out)
		}
	})

	t.Run("reload with a broken file", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(c1Dir, "broken.json"), []byte(`{"disable_remote_exec": tru`), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := gossipCLI(t, bin, c1.HTTPAddr(), "reload")
		t.Logf("cairn reload (exit %d): %s%s", code, out, errOut)
		if code == 0 || !strings.Contains(errOut, "broken.json") {
			t.Fatalf("reload of a broken file: exit %d, stderr %q", code, errOut)
		}
		if c1.Exited() {
			t.Fatal("c1 exited after a bad reload")
		}
		if !strings.Contains(c1.Log(), "broken.json") {
			t.Errorf("c1's log does not report the broken file")
		}
		// The running configuration stayed: remote exec still enabled.
		out, _, _ = gossipCLI(t, bin, c1.HTTPAddr(), "exec", "--node", "^c1$", "--wait", "1s", "true")
		if !strings.Contains(out, "==> c1: finished with exit code 0") {
			t.Errorf("after bad reload, exec on c1:\n%s", out)
		}
		os.Remove(filepath.Join(c1Dir, "broken.json"))
		if out, errOut, code := gossipCLI(t, bin, c1.HTTPAddr(), "reload"); code != 0 || !strings.Contains(out, "Configuration reload triggered") {
			t.Fatalf("reload after fix: exit %d %s%s", code, out, errOut)
		}
	})

	t.Run("SIGHUP with a broken file", func(t *testing.T) {
		bad := filepath.Join(c1Dir, "broken-hup.json")
		if err := os.WriteFile(bad, []byte(`{"services": [`), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(bad)
		c1.Signal(syscall.SIGHUP)
		c1.WaitLog(10*time.Second, "reload failed, keeping the running configuration")
		if !strings.Contains(c1.Log(), "broken-hup.json") || c1.Exited() {
			t.Fatalf("SIGHUP with a broken file: exited=%v", c1.Exited())
		}
	})

	t.Run("monitor", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var buf agenttest.LockedBuffer
		cmd := exec.CommandContext(ctx, bin, "monitor", "-log-level", "debug")
		cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+c1.HTTPAddr())
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		testutil.Eventually(t, 15*time.Second, "monitor streams a debug line about a new event", func() error {
			gossipCLI(t, bin, c1.HTTPAddr(), "event", "--name", "monitor-probe")
			if !strings.Contains(buf.String(), "monitor-probe") {
				return fmt.Errorf("monitor output so far: %q", buf.String())
			}
			return nil
		})
	})

	t.Run("watch views", func(t *testing.T) {
		h := c1.HTTPAddr()
		gossipCLI(t, bin, h, "kv", "put", "app/color", "blue")
		gossipCLI(t, bin, h, "kv", "put", "app/size", "xl")
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--type", "key", "--key", "app/color"}, []string{`"Key": "app/color"`, `"Value": "Ymx1ZQ=="`}},
			{[]string{"-type", "keyprefix", "-prefix", "app/"}, []string{`"Key": "app/color"`, `"Key": "app/size"`}},
			{[]string{"--type", "services"}, []string{`"consul": [`}},
			{[]string{"--type", "nodes"}, []string{`"Node": "s1"`, `"Node": "c1"`}},
			{[]string{"--type", "service", "--service", "consul"}, []string{`"Service": "consul"`}},
			{[]string{"--type", "checks"}, []string{`"CheckID": "serfHealth"`, `"Node": "c2"`}},
		} {
			out, errOut, code := gossipCLI(t, bin, h, append([]string{"watch"}, c.args...)...)
			for _, w := range c.want {
				if code != 0 || !strings.Contains(out, w) {
					t.Errorf("watch %v: exit %d, lacks %s:\n%s%s", c.args, code, w, out, errOut)
				}
			}
		}
		// A handler runs on every change, with the view on stdin.
		f := filepath.Join(t.TempDir(), "views")
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "watch", "--type", "key", "--key", "app/color", "cat >> "+f)
		cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+h)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); cmd.Wait() }()
		testutil.Eventually(t, 10*time.Second, "first handler run", func() error {
			if b, _ := os.ReadFile(f); !strings.Contains(string(b), "Ymx1ZQ==") {
				return fmt.Errorf("%s", b)
			}
			return nil
		})
		gossipCLI(t, bin, h, "kv", "put", "app/color", "red")
		testutil.Eventually(t, 10*time.Second, "handler run after the change", func() error {
			if b, _ := os.ReadFile(f); !strings.Contains(string(b), "cmVk") {
				return fmt.Errorf("%s", b)
			}
			return nil
		})
	})

	t.Run("failed, force-leave, prune", func(t *testing.T) {
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
	})

	t.Run("graceful leave of a follower", func(t *testing.T) {
		leader := gossipLeader(t, bin, servers)
		var follower *agenttest.Proc
		for _, s := range servers {
			if s != leader {
				follower = s
			}
		}
		checkLeftServer(t, bin, follower, servers)
	})
}

func s1HTTP(servers []*agenttest.Proc) string { return servers[0].HTTPAddr() }

// TestGossipEncryption: a cluster started with a keygen key refuses
// agents without it or with another key (and the logs say why), keeps
// every member alive through a keyring rotation, and stays writable
// with 2 Raft peers when its leader leaves gracefully.
func TestGossipEncryption(t *testing.T) {
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	keyOut, _, code := gossipCLI(t, bin, "127.0.0.1:1", "keygen")
	key := strings.TrimSpace(keyOut)
	if code != 0 || len(key) != 44 {
		t.Fatalf("keygen: exit %d, %q", code, keyOut)
	}
	var servers []*agenttest.Proc
	for i := 1; i <= 3; i++ {
		args := []string{"--server", "--bootstrap-expect", "3", "-encrypt", key}
		if i > 1 {
			args = append(args, "--retry-join", servers[0].SerfAddr())
		}
		servers = append(servers, agenttest.StartAgent(t, bin, "e"+strconv.Itoa(i), args...))
	}
	client := agenttest.StartAgent(t, bin, "ec", "--encrypt", key, "--retry-join", servers[0].SerfAddr())
	gossipLeader(t, bin, servers)
	alive := map[string]string{"e1": "alive", "e2": "alive", "e3": "alive", "ec": "alive"}
	waitMembers(t, bin, servers[0].HTTPAddr(), alive, 30*time.Second)

	t.Run("agents without the key are refused", func(t *testing.T) {
		noKey := agenttest.StartAgent(t, bin, "nokey", "--retry-join", servers[0].SerfAddr())
		wrongKey := agenttest.StartAgent(t, bin, "wrongkey", "--encrypt", strings.TrimSpace(mustKeygen(t, bin)), "--retry-join", servers[1].SerfAddr())
		noKey.WaitLog(20*time.Second, "this agent needs its key (--encrypt)")
		wrongKey.WaitLog(20*time.Second, "--encrypt must match the cluster's")
		servers[0].WaitLog(20*time.Second, "remote state is not encrypted")
		servers[1].WaitLog(20*time.Second, "no installed keys could decrypt")
		for _, l := range strings.Split(noKey.Log(), "\n") {
			if strings.Contains(l, "encryption") {
				t.Logf("nokey: %s", l)
				break
			}
		}
		m, out, err := gossipMembers(t, bin, servers[0].HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m["nokey"]; ok {
			t.Errorf("an agent without the key joined:\n%s", out)
		}
		if _, ok := m["wrongkey"]; ok {
			t.Errorf("an agent with another key joined:\n%s", out)
		}
		noKey.Kill()
		wrongKey.Kill()
	})

	t.Run("keyring rotation", func(t *testing.T) {
		newKey := strings.TrimSpace(mustKeygen(t, bin))
		http := servers[1].HTTPAddr()
		steps := [][]string{
			{"keyring", "--install", newKey},
			{"keyring", "-use", newKey},
			{"keyring", "--remove", key},
		}
		for _, s := range steps {
			if out, errOut, code := gossipCLI(t, bin, http, s...); code != 0 {
				t.Fatalf("%v: exit %d %s%s", s, code, out, errOut)
			}
			if s[1] == "--install" {
				out, _, _ := gossipCLI(t, bin, http, "keyring", "--list")
				t.Logf("after install:\n%s", out)
				if !strings.Contains(out, newKey+" [4/4]") || !strings.Contains(out, key+" [4/4]") || !strings.Contains(out, "WAN:\n  ") || !strings.Contains(out, newKey+" [3/3]") {
					t.Errorf("keyring --list after install:\n%s", out)
				}
			}
		}
		out, _, _ := gossipCLI(t, bin, http, "keyring", "--list")
		t.Logf("after rotation:\n%s", out)
		if !strings.Contains(out, "dc1 (LAN):\n  "+newKey+" [4/4]") || strings.Contains(out, key) {
			t.Errorf("keyring --list after rotation:\n%s", out)
		}
		// Gossip still flows on the new key: a user event fired after the
		// rotation reaches every agent; and everyone stays alive.
		if out, errOut, code := gossipCLI(t, bin, client.HTTPAddr(), "event", "-name", "rotated"); code != 0 {
			t.Fatalf("event after rotation: exit %d %s%s", code, out, errOut)
		}
		for _, p := range append(append([]*agenttest.Proc{}, servers...), client) {
			testutil.Eventually(t, 20*time.Second, p.Name+" sees the event fired after the rotation", func() error {
				b, err := cacheHTTP("GET", "http://"+p.HTTPAddr()+"/v1/event/list?name=rotated", nil)
				if err != nil {
					return err
				}
				if !strings.Contains(string(b), `"rotated"`) {
					return fmt.Errorf("event list %s", b)
				}
				return nil
			})
		}
		waitMembers(t, bin, servers[0].HTTPAddr(), alive, 10*time.Second)
		waitMembers(t, bin, client.HTTPAddr(), alive, 10*time.Second)
	})

	t.Run("graceful leave of the leader", func(t *testing.T) {
		checkLeftServer(t, bin, gossipLeader(t, bin, servers), servers)
	})
}

func mustKeygen(t *testing.T, bin string) string {
	out, _, code := gossipCLI(t, bin, "127.0.0.1:1", "keygen")
	if code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	return out
}
