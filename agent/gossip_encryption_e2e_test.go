package agent_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestGossipEncryption: a cluster started with a keygen key refuses
// agents without it or with another key (and the logs say why), keeps
// every member alive through a keyring rotation, and stays writable
// with 2 Raft peers when its leader leaves gracefully.
func TestGossipEncryption(t *testing.T) {
	x := startEncryptedCluster(t)
	// In order: the last step makes the leader leave.
	runSteps(t, x, []step[*encryptedCluster]{
		{"agents without the key are refused", testEncryptedRefusesOthers},
		{"keyring rotation", testEncryptedKeyringRotation},
		{"graceful leave of the leader", testEncryptedLeaderLeaves},
	})
}

// encryptedCluster is TestGossipEncryption's: 3 servers and a client
// started with one keygen key, all alive.
type encryptedCluster struct {
	bin     string
	servers []*agenttest.Proc
	client  *agenttest.Proc
	key     string // the cluster's gossip key
	alive   map[string]string
}

// startEncryptedCluster makes a key and starts the cluster with it.
func startEncryptedCluster(t *testing.T) *encryptedCluster {
	t.Helper()
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
	return &encryptedCluster{bin: bin, servers: servers, client: client, key: key, alive: alive}
}

func testEncryptedRefusesOthers(t *testing.T, x *encryptedCluster) {
	bin, servers := x.bin, x.servers
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
}

func testEncryptedKeyringRotation(t *testing.T, x *encryptedCluster) {
	bin, servers, client, key, alive := x.bin, x.servers, x.client, x.key, x.alive
	newKey := strings.TrimSpace(mustKeygen(t, bin))
	http := servers[1].HTTPAddr()
	// A keyring operation counts the members its sender knows: e2 must
	// see everyone first, or a member it has not met misses the new key.
	waitMembers(t, bin, http, alive, 30*time.Second)
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
}

func testEncryptedLeaderLeaves(t *testing.T, x *encryptedCluster) {
	bin, servers := x.bin, x.servers
	checkLeftServer(t, bin, gossipLeader(t, bin, servers), servers)
}

func mustKeygen(t *testing.T, bin string) string {
	out, _, code := gossipCLI(t, bin, "127.0.0.1:1", "keygen")
	if code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	return out
}
