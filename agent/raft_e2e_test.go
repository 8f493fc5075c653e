package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// callOnce dials addr and runs one RPC with a timeout.
func callOnce(addr, method string, args, reply any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := rpc.Dial(ctx, addr, rpc.DialOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Call(ctx, method, args, reply)
}

// localKeys reads every key under prefix from this server's own state
// (a stale read: exactly what this server has applied).
func localKeys(addr, prefix string) (map[string]bool, error) {
	var out structs.IndexedKeyList
	err := callOnce(addr, structs.MethodKVSListKeys, &structs.KeyRequest{Key: prefix, QueryOptions: structs.QueryOptions{AllowStale: true}}, &out, 5*time.Second)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(out.Keys))
	for _, k := range out.Keys {
		m[k] = true
	}
	return m, nil
}

func leaderAddr(addr string) string {
	var leader string
	if err := callOnce(addr, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, &leader, 2*time.Second); err != nil {
		return ""
	}
	return leader
}

func startServers(t *testing.T, bin string, n int) []*agenttest.Proc {
	t.Helper()
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	var procs []*agenttest.Proc
	var join string
	for i := 0; i < n; i++ {
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
	testutil.Eventually(t, 60*time.Second, "all servers agree on a leader", func() error {
		first := ""
		for _, p := range procs {
			l := leaderAddr(p.RPCAddr())
			if l == "" {
				return fmt.Errorf("%s sees no leader", p.Name)
			}
			if first != "" && l != first {
				return fmt.Errorf("leaders disagree: %s vs %s", first, l)
			}
			first = l
		}
		return nil
	})
	return procs
}

// writeStream runs writers that put keys through any live server until
// stop closes; it returns every key whose write was acknowledged.
type writeStream struct {
	mu    sync.Mutex
	acked map[string]bool
	fails int
}

func (w *writeStream) run(t *testing.T, stop <-chan struct{}, writers int, targets func() []string) *sync.WaitGroup {
	w.acked = map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			var sess *rpc.Session
			defer func() {
				if sess != nil {
					sess.Close()
				}
			}()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ts := targets()
				addr := ts[(id+n)%len(ts)]
				if sess == nil || sess.IsClosed() || sess.Addr() != addr {
					if sess != nil {
						sess.Close()
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					s, err := rpc.Dial(ctx, addr, rpc.DialOptions{})
					cancel()
					if err != nil {
						sess = nil
						if !pause(stop, writeRetryPause) {
							return
						}
						continue
					}
					sess = s
				}
				key := fmt.Sprintf("w/%d/%d", id, n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var out structs.WriteResponse
				err := sess.Call(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: []byte(key)}}, &out)
				cancel()
				w.mu.Lock()
				if err == nil && out.Index > 0 {
					w.acked[key] = true
				} else {
					w.fails++
				}
				w.mu.Unlock()
				if err != nil {
					sess.Close()
					sess = nil
					if !pause(stop, writeRetryPause) {
						return
					}
				}
			}
		}(i)
	}
	return &wg
}

// writeRetryPause spaces a writer's attempts while no server answers it.
const writeRetryPause = 20 * time.Millisecond

// pause waits d, or returns false at once when stop closes.
func pause(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

// waitAcked waits until n more writes than after were acknowledged.
func (w *writeStream) waitAcked(t *testing.T, after, n int, what string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, what, func() error {
		if got := w.ackedCount() - after; got < n {
			return fmt.Errorf("%d acknowledged writes, want %d", got, n)
		}
		return nil
	})
}

func (w *writeStream) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writeStream) missing(have map[string]bool) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var miss []string
	for k := range w.acked {
		if !have[k] {
			miss = append(miss, k)
		}
	}
	return miss
}

func TestKillLeaderLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process raft test")
	}
	bin := agenttest.Binary(t)
	procs := startServers(t, bin, 3)
	var mu sync.Mutex
	alive := map[*agenttest.Proc]bool{}
	for _, p := range procs {
		alive[p] = true
	}
	targets := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, p := range procs {
			if alive[p] {
				out = append(out, p.RPCAddr())
			}
		}
		return out
	}
	stop := make(chan struct{})
	var ws writeStream
	wg := ws.run(t, stop, 16, targets)

	ws.waitAcked(t, 0, 200, "the write stream runs")
	leader := leaderAddr(procs[0].RPCAddr())
	var victim *agenttest.Proc
	for _, p := range procs {
		if p.RPCAddr() == leader {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("leader %q is not one of ours", leader)
	}
	mu.Lock()
	alive[victim] = false
	mu.Unlock()
	victim.Kill()
	t.Logf("killed leader %s", victim.Name)
	ws.waitAcked(t, ws.ackedCount(), 100, "writes acknowledged after the kill (a new leader)")
	close(stop)
	wg.Wait()

	ws.mu.Lock()
	acked, fails := len(ws.acked), ws.fails
	ws.mu.Unlock()
	t.Logf("acknowledged writes: %d, failed/unknown: %d", acked, fails)
	if acked < 100 {
		t.Fatalf("only %d acknowledged writes: the stream did not run", acked)
	}
	var survivors []*agenttest.Proc
	for _, p := range procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	testutil.Eventually(t, 30*time.Second, "a new leader among survivors", func() error {
		l := leaderAddr(survivors[0].RPCAddr())
		if l == "" || l == victim.RPCAddr() {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	for _, p := range survivors {
		testutil.Eventually(t, 30*time.Second, p.Name+" has every acknowledged write", func() error {
			have, err := localKeys(p.RPCAddr(), "w/")
			if err != nil {
				return err
			}
			if miss := ws.missing(have); len(miss) > 0 {
				return fmt.Errorf("%d acknowledged writes missing, e.g. %v", len(miss), miss[0])
			}
			return nil
		})
	}
	victim.Restart()
	testutil.Eventually(t, 60*time.Second, "restarted "+victim.Name+" has every acknowledged write", func() error {
		have, err := localKeys(victim.RPCAddr(), "w/")
		if err != nil {
			return err
		}
		if miss := ws.missing(have); len(miss) > 0 {
			return fmt.Errorf("%d acknowledged writes missing, e.g. %v", len(miss), miss[0])
		}
		return nil
	})
}

func TestSingleServerSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process raft test")
	}
	bin := agenttest.Binary(t)
	procs := startServers(t, bin, 1)
	p := procs[0]
	stop := make(chan struct{})
	var ws writeStream
	wg := ws.run(t, stop, 8, func() []string { return []string{p.RPCAddr()} })
	ws.waitAcked(t, 0, 100, "the write stream runs")
	p.Kill() // mid-stream
	close(stop)
	wg.Wait()
	ws.mu.Lock()
	acked := len(ws.acked)
	ws.mu.Unlock()
	if acked < 50 {
		t.Fatalf("only %d acknowledged writes before the kill", acked)
	}
	p.Restart()
	testutil.Eventually(t, 30*time.Second, "restarted server has every acknowledged write", func() error {
		have, err := localKeys(p.RPCAddr(), "w/")
		if err != nil {
			return err
		}
		if miss := ws.missing(have); len(miss) > 0 {
			return fmt.Errorf("%d of %d acknowledged writes missing, e.g. %v", len(miss), acked, miss[0])
		}
		return nil
	})
	t.Logf("all %d acknowledged writes survived SIGKILL", acked)
}

func TestCorruptDataDirFailsClearly(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := agenttest.Binary(t)
	cases := []struct {
		name  string
		setup func(dir string) error
	}{
		{"raft dir is a file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "raft"), []byte("not a directory"), 0o600)
		}},
		{"garbage pebble files", func(dir string) error {
			rd := filepath.Join(dir, "raft")
			if err := os.MkdirAll(rd, 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(rd, "CURRENT"), []byte("MANIFEST-000099\n"), 0o600); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(rd, "MANIFEST-000099"), []byte("\x00garbage\xff\xfe"), 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.setup(dir); err != nil {
				t.Fatal(err)
			}
			p := agenttest.StartAgent(t, bin, "corrupt", "--server", "--bootstrap-expect", "1", "--data-dir", dir)
			testutil.Eventually(t, 20*time.Second, "agent exits", func() error {
				if !p.Exited() {
					return fmt.Errorf("still running")
				}
				return nil
			})
			log := p.Log()
			if !strings.Contains(log, dir) {
				t.Fatalf("error does not name the data dir %s:\n%s", dir, log)
			}
			if strings.Contains(log, "panic:") || strings.Contains(log, "goroutine ") {
				t.Fatalf("agent panicked instead of a clear error:\n%s", log)
			}
		})
	}
}
