package agent_test

// End-to-end proof of the client→server forwarder with real processes:
// 3 servers + 5 client agents on loopback. One client serves 1,000
// concurrent reads over exactly one TCP connection to the server tier
// (checked from its metrics and from /proc), its server shrugs off hostile
// raw TCP input, and after kill -9 of that server the client reconnects
// elsewhere within 2 s while a blocking query re-arms.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// e2eCluster is a set of servers and client agents of one datacenter.
type e2eCluster struct {
	servers, clients []*agenttest.Proc
	rpcPorts         map[int]bool
}

func (c *e2eCluster) serverByRPCPort(port int) *agenttest.Proc {
	for _, s := range c.servers {
		if s.Ports.Server == port {
			return s
		}
	}
	return nil
}

// connectedServer returns the one server p holds a connection to.
func (c *e2eCluster) connectedServer(p *agenttest.Proc) (*agenttest.Proc, error) {
	conns, err := procServerConns(p.Pid(), c.rpcPorts)
	if err != nil {
		return nil, err
	}
	if len(conns) != 1 {
		return nil, fmt.Errorf("%s holds %d connections to servers %v, want 1", p.Name, len(conns), conns)
	}
	return c.serverByRPCPort(conns[0]), nil
}

// startE2ECluster starts nServers servers and nClients clients with fast
// gossip and waits until every client reaches a server with a leader.
func startE2ECluster(t *testing.T, hc *http.Client, bin string, nServers, nClients int) *e2eCluster {
	t.Helper()
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	c := &e2eCluster{rpcPorts: map[int]bool{}}
	var join string
	c.servers, join = startServerAgents(t, bin, "fs", nServers)
	for _, p := range c.servers {
		c.rpcPorts[p.Ports.Server] = true
	}
	// The thousand-readers test holds 1,000 concurrent HTTP connections
	// from one IP, above Consul's default per-client cap of 200: raise it,
	// as an operator running a load generator on one host would.
	limits := t.TempDir()
	if err := os.WriteFile(filepath.Join(limits, "limits.json"), []byte(`{"limits": {"http_max_conns_per_client": 2000}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < nClients; i++ {
		c.clients = append(c.clients, startAgent(t, bin, "fc"+strconv.Itoa(i+1), "--retry-join", join, "--config-dir", limits))
	}
	exited := func() {
		for _, p := range append(slices.Clone(c.servers), c.clients...) {
			if p.Exited() {
				t.Fatalf("%s exited during start-up; log tail:\n%s", p.Name, tailString(p.Log(), 3000))
			}
		}
	}
	testutil.Eventually(t, 60*time.Second, "a leader seen by every server", func() error {
		exited()
		first := ""
		for _, p := range c.servers {
			b, _, err := e2eGet(hc, "http://"+p.HTTPAddr()+"/v1/status/leader", 2*time.Second)
			if err != nil {
				return err
			}
			var l string
			if err := json.Unmarshal(b, &l); err != nil || l == "" {
				return fmt.Errorf("%s: no leader yet (%s)", p.Name, b)
			}
			if first != "" && l != first {
				return fmt.Errorf("leaders disagree: %s vs %s", first, l)
			}
			first = l
		}
		return nil
	})
	testutil.Eventually(t, 60*time.Second, "every client reads through one server connection", func() error {
		exited()
		for _, p := range c.clients {
			if _, _, err := e2eGet(hc, "http://"+p.HTTPAddr()+"/v1/catalog/nodes", 3*time.Second); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			if _, err := c.connectedServer(p); err != nil {
				return err
			}
			if g, err := e2eMetric(hc, p, "cairn_forwarder_connections"); err != nil || g != 1 {
				return fmt.Errorf("%s: cairn_forwarder_connections = %v (%v), want 1", p.Name, g, err)
			}
		}
		return nil
	})
	return c
}

// TestForwarderE2E runs the forwarder's end-to-end promises on one
// 3-server, 5-client cluster, as sequential subtests.
func TestForwarderE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 agent processes")
	}
	bin := agenttest.Binary(t)
	hc := e2eClient()
	defer hc.CloseIdleConnections()
	cl := startE2ECluster(t, hc, bin, 3, 5)
	client := cl.clients[0]
	base := "http://" + client.HTTPAddr()

	// Data to read: an external service and a key, written through the
	// client (so through its forwarder).
	reg := []byte(`{"Node":"ext-web","Address":"10.1.2.3","Service":{"Service":"web","Port":8080,"Tags":["v1"]}}`)
	if _, err := e2ePut(hc, base+"/v1/catalog/register", reg); err != nil {
		t.Fatal(err)
	}
	if _, err := e2ePut(hc, base+"/v1/kv/e2e/k", []byte("v0")); err != nil {
		t.Fatal(err)
	}

	t.Run("1000ConcurrentReadsOneConnection", func(t *testing.T) {
		testThousandReads(t, hc, cl, client)
	})
	if t.Failed() {
		return
	}
	t.Run("BadInputToServer", func(t *testing.T) {
		testBadInput(t, hc, cl, client)
	})
	if t.Failed() {
		return
	}
	t.Run("KillConnectedServer", func(t *testing.T) {
		testKillConnectedServer(t, hc, cl, client)
	})
}

func testThousandReads(t *testing.T, hc *http.Client, cl *e2eCluster, client *agenttest.Proc) {
	base := "http://" + client.HTTPAddr()
	before, err := e2eMetric(hc, client, "cairn_forwarder_requests_total")
	if err != nil {
		t.Fatal(err)
	}

	// Sample the client's server connections from /proc while the reads run.
	sampler := startConnSampler(client.Pid(), cl.rpcPorts)
	// 1,000 readers in flight at once; each reads a few times so the
	// /proc sampler sees the connection table during the load.
	const readers, readsPerReader = 1000, 3
	t0 := time.Now()
	failed, errMsg := burstReads(hc, readers, readsPerReader, base+"/v1/health/service/web", base+"/v1/kv/e2e/k")
	elapsed := time.Since(t0)
	sampler.stop()

	if failed > 0 {
		t.Fatalf("%d of %d reads from %d concurrent readers failed; first: %s", failed, readers*readsPerReader, readers, errMsg)
	}
	t.Logf("%d reads from %d concurrent readers through %s in %v; /proc samples=%d min=%d max=%d server connections",
		readers*readsPerReader, readers, client.Name, elapsed.Round(time.Millisecond), sampler.samples.Load(), sampler.min.Load(), sampler.max.Load())
	if sampler.samples.Load() == 0 {
		t.Fatal("no /proc sample taken")
	}
	if sampler.max.Load() != 1 || sampler.min.Load() != 1 {
		t.Fatalf("client held between %d and %d server connections during the reads, want exactly 1", sampler.min.Load(), sampler.max.Load())
	}
	conns, err := procServerConns(client.Pid(), cl.rpcPorts)
	if err != nil || len(conns) != 1 {
		t.Fatalf("after the reads /proc shows server connections %v (%v), want exactly 1", conns, err)
	}
	g, err := e2eMetric(hc, client, "cairn_forwarder_connections")
	if err != nil || g != 1 {
		t.Fatalf("cairn_forwarder_connections = %v (%v), want 1", g, err)
	}
	after, err := e2eMetric(hc, client, "cairn_forwarder_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if after-before < readers*readsPerReader {
		t.Fatalf("cairn_forwarder_requests_total grew by %v, want >= %d: reads did not go through the forwarder", after-before, readers*readsPerReader)
	}
	t.Logf("forwarder requests +%v, connected to %s (rpc port %d)", after-before, cl.serverByRPCPort(conns[0]).Name, conns[0])
}

// connSampler reads a process's connections to the server ports from
// /proc every 10 ms until stop, keeping the fewest and most seen.
type connSampler struct {
	min, max, samples atomic.Int64
	done              chan struct{}
	wg                sync.WaitGroup
}

func startConnSampler(pid int, rpcPorts map[int]bool) *connSampler {
	s := &connSampler{done: make(chan struct{})}
	s.min.Store(1 << 30)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 10000; i++ { // bounded: 100 s
			conns, err := procServerConns(pid, rpcPorts)
			if err == nil {
				n := int64(len(conns))
				if n > s.max.Load() {
					s.max.Store(n)
				}
				if n < s.min.Load() {
					s.min.Store(n)
				}
				s.samples.Add(1)
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *connSampler) stop() {
	close(s.done)
	s.wg.Wait()
}

// burstReads releases readers goroutines at once, each reading
// readsPerReader times, alternating between the service URL (whose answer
// must hold instance 10.1.2.3) and the KV URL. It returns the number of
// failed reads and the first failure.
func burstReads(hc *http.Client, readers, readsPerReader int, serviceURL, kvURL string) (int64, string) {
	urls := []string{serviceURL, kvURL}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr sync.Once
	var errMsg string
	startGate := make(chan struct{})
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-startGate
			for r := 0; r < readsPerReader; r++ {
				u := (i + r) % 2
				b, _, err := e2eGet(hc, urls[u], 30*time.Second)
				if err == nil && !bytes.Contains(b, []byte(`"`)) {
					err = fmt.Errorf("empty answer %q", b)
				}
				if err == nil && u == 0 && !bytes.Contains(b, []byte(`"10.1.2.3"`)) {
					err = fmt.Errorf("service answer without the instance: %s", b)
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { errMsg = err.Error() })
				}
			}
		}(i)
	}
	close(startGate)
	wg.Wait()
	return failed.Load(), errMsg
}

type kvEntry struct {
	Key         string
	Value       []byte
	ModifyIndex uint64
}

// blockedRead is the answer to a blocking query and when it came.
type blockedRead struct {
	body []byte
	idx  uint64
	err  error
	at   time.Time
}

func testKillConnectedServer(t *testing.T, hc *http.Client, cl *e2eCluster, client *agenttest.Proc) {
	base := "http://" + client.HTTPAddr()
	victim, err := cl.connectedServer(client)
	if err != nil {
		t.Fatal(err)
	}
	lb, _, _ := e2eGet(hc, "http://"+victim.HTTPAddr()+"/v1/status/leader", 2*time.Second)
	isLeader := strings.Contains(string(lb), victim.RPCAddr())
	t.Logf("%s is connected to %s (leader: %v)", client.Name, victim.Name, isLeader)

	if _, err := e2ePut(hc, base+"/v1/kv/e2e/x", []byte("before")); err != nil {
		t.Fatal(err)
	}
	_, idx, err := e2eGet(hc, base+"/v1/kv/e2e/x", 5*time.Second)
	if err != nil || idx == 0 {
		t.Fatalf("read x: idx=%d err=%v", idx, err)
	}

	// A blocking query parked on the victim before the kill.
	blocked := make(chan blockedRead, 1)
	go func() {
		b, i, err := e2eGet(hc, fmt.Sprintf("%s/v1/kv/e2e/x?index=%d&wait=30s", base, idx), 40*time.Second)
		blocked <- blockedRead{b, i, err, time.Now()}
	}()
	// It must stay parked while nothing changes (which also lets it reach
	// the server: no metric shows an RPC in flight).
	select {
	case r := <-blocked:
		t.Fatalf("blocking query returned before any change: %s idx=%d err=%v", r.body, r.idx, r.err)
	case <-time.After(300 * time.Millisecond):
	}

	// Readers in flight across the kill: every read must succeed (reads
	// are retried on the next server; servers hold them through an
	// election).
	across := startReadLoad(hc, 32, 0, 15*time.Second, base+"/v1/health/service/web", base+"/v1/kv/e2e/k", base+"/v1/kv/e2e/k?stale")
	testutil.Eventually(t, 10*time.Second, "readers in flight before the kill", func() error {
		if n := across.ok.Load(); n < 32 {
			return fmt.Errorf("%d reads so far", n)
		}
		return nil
	})

	victim.Kill()
	checkReadsRecover(t, hc, base, victim, isLeader)

	past := across.ok.Load()
	testutil.Eventually(t, 10*time.Second, "reads after the recovery", func() error {
		if n := across.ok.Load() - past; n < 32 {
			return fmt.Errorf("%d reads since the recovery", n)
		}
		return nil
	})
	across.stop()
	t.Logf("reads in flight across the kill: %d ok, %d failed", across.ok.Load(), across.errs.Load())
	if n := across.errs.Load(); n > 0 {
		t.Fatalf("%d reads in flight across the kill failed; last: %v", n, across.lastErr.Load())
	}

	now, err := cl.connectedServer(client)
	if err != nil {
		t.Fatal(err)
	}
	if now == victim {
		t.Fatalf("still connected to the killed server")
	}
	if g, err := e2eMetric(hc, client, "cairn_forwarder_connections"); err != nil || g != 1 {
		t.Fatalf("cairn_forwarder_connections = %v (%v) after failover, want 1", g, err)
	}
	t.Logf("%s now connected to %s", client.Name, now.Name)
	checkBlockedReadWakes(t, hc, base, blocked, idx)
}

// checkReadsRecover checks reads through base work again within 2 s of
// the kill of victim (5 s for default-consistency reads when it led).
func checkReadsRecover(t *testing.T, hc *http.Client, base string, victim *agenttest.Proc, isLeader bool) {
	t.Helper()
	killed := time.Now()
	// Stale reads are answered by whichever server the client reaches:
	// they measure the reconnect itself.
	var staleOK time.Duration
	if err := testutil.Wait(context.Background(), 10*time.Second, func() error {
		_, _, err := e2eGet(hc, base+"/v1/kv/e2e/k?stale", 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("no read succeeded after the kill: %v", err)
	}
	staleOK = time.Since(killed)
	// Default-consistency reads also need a leader (a new one, if the
	// victim led).
	var defaultOK time.Duration
	if err := testutil.Wait(context.Background(), 15*time.Second, func() error {
		_, _, err := e2eGet(hc, base+"/v1/health/service/web", 2*time.Second)
		return err
	}); err == nil {
		defaultOK = time.Since(killed)
	}
	t.Logf("after kill -9 of %s: first stale read ok after %v, first default read ok after %v",
		victim.Name, staleOK.Round(time.Millisecond), defaultOK.Round(time.Millisecond))
	if staleOK > 2*time.Second {
		t.Fatalf("client needed %v to read again after the kill, want <= 2s", staleOK)
	}
	if defaultOK == 0 {
		t.Fatal("default-consistency reads never recovered")
	}
	if !isLeader && defaultOK > 2*time.Second {
		t.Fatalf("victim was a follower, yet default reads took %v to recover, want <= 2s", defaultOK)
	}
	// A dead leader costs an election: the servers hold reads meanwhile.
	if isLeader && defaultOK > 5*time.Second {
		t.Fatalf("victim led, and default reads took %v to recover, want <= 5s", defaultOK)
	}
}

// checkBlockedReadWakes checks the blocking query on e2e/x (at idx) is
// still pending (or re-armed) and completes with the new value once it is
// written.
func checkBlockedReadWakes(t *testing.T, hc *http.Client, base string, blocked <-chan blockedRead, idx uint64) {
	t.Helper()
	select {
	case r := <-blocked:
		if r.err == nil {
			t.Fatalf("blocking query returned before the change: %s (idx %d)", r.body, r.idx)
		}
		t.Fatalf("blocking query failed across the kill: %v", r.err)
	default:
	}
	var written time.Time
	testutil.Eventually(t, 15*time.Second, "write after failover", func() error {
		written = time.Now()
		_, err := e2ePut(hc, base+"/v1/kv/e2e/x", []byte("after"))
		return err
	})
	select {
	case r := <-blocked:
		if r.err != nil {
			t.Fatalf("blocking query failed: %v", r.err)
		}
		var ents []kvEntry
		if err := json.Unmarshal(r.body, &ents); err != nil || len(ents) != 1 {
			t.Fatalf("blocking query body %s: %v", r.body, err)
		}
		if string(ents[0].Value) != "after" || r.idx <= idx {
			t.Fatalf("blocking query returned value %q index %d, want \"after\" and index > %d", ents[0].Value, r.idx, idx)
		}
		t.Logf("blocking query (index %d) completed %v after the write was sent, with the new value, index %d",
			idx, r.at.Sub(written).Round(time.Millisecond), r.idx)
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not complete within 10s of the change")
	}
}
