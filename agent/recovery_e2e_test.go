package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// Outage-recovery tests with real processes: kill -9, peers.json, and
// snapshot save/restore through the CLI. Helpers are local (rec*) so the
// file stands alone.

func recHTTP(method, url string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// recLocalKV is every key=value under prefix in this server's own state.
func recLocalKV(p *agenttest.Proc, prefix string) ([]string, error) {
	code, b, err := recHTTP(http.MethodGet, "http://"+p.HTTPAddr()+"/v1/kv/"+prefix+"?recurse&stale", nil)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound {
		return nil, nil
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", code, b)
	}
	var entries []struct {
		Key   string
		Value []byte
	}
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Key+"="+string(e.Value))
	}
	slices.Sort(out)
	return out, nil
}

func recLeader(p *agenttest.Proc) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := rpc.Dial(ctx, p.RPCAddr(), rpc.DialOptions{})
	if err != nil {
		return ""
	}
	defer s.Close()
	var leader string
	if err := s.Call(ctx, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, &leader); err != nil {
		return ""
	}
	return leader
}

func recServers(t *testing.T, bin string, n int) []*agenttest.Proc {
	t.Helper()
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	var procs []*agenttest.Proc
	join := ""
	for i := range n {
		args := []string{"--server", "--bootstrap-expect", strconv.Itoa(n)}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := agenttest.StartAgent(t, bin, "s"+strconv.Itoa(i+1), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		procs = append(procs, p)
	}
	recWaitLeader(t, procs...)
	return procs
}

func recWaitLeader(t *testing.T, procs ...*agenttest.Proc) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, "all servers agree on a leader", func() error {
		first := ""
		for _, p := range procs {
			l := recLeader(p)
			if l == "" || (first != "" && l != first) {
				return fmt.Errorf("%s sees leader %q, others %q", p.Name, l, first)
			}
			first = l
		}
		return nil
	})
}

func recCLI(t *testing.T, bin string, p *agenttest.Proc, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--http-addr", p.HTTPAddr())...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPeersJSONRecoveryAfterLosingTwoServers: 3 server processes, writes
// acknowledged, 2 servers killed -9 for good, the survivor killed -9 too
// and restarted with <data-dir>/raft/peers.json naming only itself: it
// leads alone, every acknowledged write is there, and it takes writes.
func TestPeersJSONRecoveryAfterLosingTwoServers(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process recovery test")
	}
	bin := agenttest.Binary(t)
	procs := recServers(t, bin, 3)
	var acked []string
	for i := range 30 {
		key, val := fmt.Sprintf("acked/%02d", i), fmt.Sprintf("v%d", i)
		code, b, err := recHTTP(http.MethodPut, "http://"+procs[i%3].HTTPAddr()+"/v1/kv/"+key, []byte(val))
		if err != nil || code != http.StatusOK || strings.TrimSpace(string(b)) != "true" {
			t.Fatalf("put %s: %d %s %v", key, code, b, err)
		}
		acked = append(acked, key+"="+val)
	}
	survivor := procs[1]
	procs[0].Kill()
	procs[2].Kill()
	survivor.Kill()

	peers := fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, survivor.Name, survivor.RPCAddr())
	peersPath := filepath.Join(survivor.DataDir, "raft", "peers.json")
	if err := os.WriteFile(peersPath, []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	survivor.Restart()
	recWaitLeader(t, survivor)
	if !strings.Contains(survivor.Log(), "recovering the Raft configuration") {
		t.Fatal("the recovery was not logged")
	}
	if _, err := os.Stat(peersPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("peers.json left in place: %v", err)
	}
	got, err := recLocalKV(survivor, "acked/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, acked) {
		t.Fatalf("after recovery: %d of %d acknowledged writes, got %v", len(got), len(acked), got)
	}
	code, b, err := recHTTP(http.MethodPut, "http://"+survivor.HTTPAddr()+"/v1/kv/after", []byte("recovery"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("write after recovery: %d %s %v", code, b, err)
	}
}

// TestSnapshotSaveWipeRestoreCLI: `cairn snapshot save`, kill -9 every
// server and wipe its data dir, start a fresh cluster, `cairn snapshot
// restore`: every server has the same KV and catalog as before; a
// damaged file is refused by the CLI and changes nothing.
func TestSnapshotSaveWipeRestoreCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process snapshot test")
	}
	bin := agenttest.Binary(t)
	procs := recServers(t, bin, 3)
	for i := range 10 {
		p := procs[i%3]
		if code, b, err := recHTTP(http.MethodPut, "http://"+p.HTTPAddr()+"/v1/kv/app/"+strconv.Itoa(i), []byte("val"+strconv.Itoa(i))); err != nil || code != 200 {
			t.Fatalf("put: %d %s %v", code, b, err)
		}
		reg := fmt.Sprintf(`{"Node": "ext%d", "Address": "10.1.0.%d", "Service": {"ID": "pay%d", "Service": "payments", "Port": %d}}`, i, i+1, i, 9000+i)
		if code, b, err := recHTTP(http.MethodPut, "http://"+p.HTTPAddr()+"/v1/catalog/register", []byte(reg)); err != nil || code != 200 {
			t.Fatalf("register: %d %s %v", code, b, err)
		}
	}
	// A stale read of a follower: wait for it to apply the last write.
	var wantKV []string
	testutil.Eventually(t, 20*time.Second, "every write applied on "+procs[0].Name, func() error {
		var err error
		wantKV, err = recLocalKV(procs[0], "app/")
		if err == nil && len(wantKV) != 10 {
			err = fmt.Errorf("%d keys", len(wantKV))
		}
		return err
	})
	file := filepath.Join(t.TempDir(), "backup.snap")
	out, err := recCLI(t, bin, procs[2], "snapshot", "save", file)
	if err != nil || !strings.Contains(out, "Saved and verified snapshot to index") {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	out, err = recCLI(t, bin, procs[2], "snapshot", "inspect", file)
	if err != nil || !strings.Contains(out, "KVS") || !strings.Contains(out, "Services") {
		t.Fatalf("snapshot inspect: %v\n%s", err, out)
	}

	for _, p := range procs {
		p.Kill()
		if err := os.RemoveAll(p.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		p.Restart()
	}
	recWaitLeader(t, procs...)
	if code, b, err := recHTTP(http.MethodPut, "http://"+procs[0].HTTPAddr()+"/v1/kv/app/0", []byte("fresh-cluster")); err != nil || code != 200 {
		t.Fatalf("put on the fresh cluster: %d %s %v", code, b, err)
	}

	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.snap")
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x20
	if err := os.WriteFile(damaged, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := recCLI(t, bin, procs[1], "snapshot", "restore", damaged); err == nil || !strings.Contains(out, "corrupt") {
		t.Fatalf("restore of a damaged file: %v\n%s", err, out)
	}
	testutil.Eventually(t, 20*time.Second, "the fresh state, unchanged by the refused restore", func() error {
		if got, err := recLocalKV(procs[0], "app/"); err != nil || !slices.Equal(got, []string{"app/0=fresh-cluster"}) {
			return fmt.Errorf("state %v %v", got, err)
		}
		return nil
	})

	if out, err := recCLI(t, bin, procs[1], "snapshot", "restore", file); err != nil || !strings.Contains(out, "Restored snapshot") {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	for _, p := range procs {
		testutil.Eventually(t, 30*time.Second, p.Name+" to hold the restored state", func() error {
			got, err := recLocalKV(p, "app/")
			if err != nil {
				return err
			}
			if !slices.Equal(got, wantKV) {
				return fmt.Errorf("kv %v", got)
			}
			code, b, err := recHTTP(http.MethodGet, "http://"+p.HTTPAddr()+"/v1/catalog/service/payments?stale", nil)
			if err != nil {
				return err
			}
			var nodes []struct{ Node, ServiceID string }
			if code != 200 || json.Unmarshal(b, &nodes) != nil || len(nodes) != 10 {
				return fmt.Errorf("payments: %d %s", code, b)
			}
			return nil
		})
	}
}
