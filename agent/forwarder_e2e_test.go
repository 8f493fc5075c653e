package agent_test

// End-to-end proof of the client→server forwarder with real processes:
// 3 servers + 5 client agents on loopback. One client serves 1,000
// concurrent reads over exactly one TCP connection to the server tier
// (checked from its metrics and from /proc), its server shrugs off hostile
// raw TCP input, and after kill -9 of that server the client reconnects
// elsewhere within 2 s while a blocking query re-arms.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	"github.com/hashicorp/yamux"
)

// e2eClient talks to the agents' HTTP APIs. Enough idle connections that
// 1,000 concurrent reads do not churn sockets; the HTTP side is not the
// subject of these tests.
func e2eClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        2048,
			MaxIdleConnsPerHost: 2048,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 45 * time.Second,
	}
}

// e2eDo runs one request and returns status, body and the X-Consul-Index.
func e2eDo(ctx context.Context, c *http.Client, method, url string, body []byte) (int, []byte, uint64, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return resp.StatusCode, b, idx, err
}

// e2eGet is e2eDo(GET) with a per-request timeout, failing on non-200.
func e2eGet(c *http.Client, url string, timeout time.Duration) ([]byte, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, b, idx, err := e2eDo(ctx, c, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if st != http.StatusOK {
		return b, idx, fmt.Errorf("GET %s: %d %s", url, st, strings.TrimSpace(string(b)))
	}
	return b, idx, nil
}

// e2ePut PUTs body, failing on non-200.
func e2ePut(c *http.Client, url string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, b, _, err := e2eDo(ctx, c, http.MethodPut, url, body)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return b, fmt.Errorf("PUT %s: %d %s", url, st, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// e2eMetric sums every sample of the named metric (all label sets) in the
// agent's Prometheus exposition.
func e2eMetric(c *http.Client, p *agenttest.Proc, name string, labels ...string) (float64, error) {
	b, _, err := e2eGet(c, "http://"+p.HTTPAddr()+"/v1/agent/metrics?format=prometheus", 5*time.Second)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(rest, l)
		}
		if !matched {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s%v not exposed by %s", name, labels, p.Name)
	}
	return sum, nil
}

// procServerConns returns the remote ports of the ESTABLISHED TCP sockets
// owned by pid (inode listed in /proc/<pid>/fd) whose remote port is in
// ports.
func procServerConns(pid int, ports map[int]bool) ([]int, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := make(map[string]bool, len(ents))
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // fd closed meanwhile
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	// /proc/net/tcp is generated a page at a time: while sockets come and
	// go (1,000 HTTP connections opening), one socket can be listed twice.
	// Count each inode once.
	seen := map[string]bool{}
	var out []int
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "01" || !inodes[fs[9]] {
				continue
			}
			i := strings.LastIndexByte(fs[2], ':')
			if i < 0 {
				continue
			}
			port, err := strconv.ParseUint(fs[2][i+1:], 16, 16)
			if err != nil {
				continue
			}
			if ports[int(port)] && !seen[fs[9]] {
				seen[fs[9]] = true
				out = append(out, int(port))
			}
		}
	}
	return out, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// startAgent starts an agent (every listener on a kernel-picked port) and
// fails the test if it exited instead of becoming ready.
func startAgent(t *testing.T, bin, name string, args ...string) *agenttest.Proc {
	t.Helper()
	p := agenttest.StartAgent(t, bin, name, args...)
	if p.Exited() {
		t.Fatalf("%s exited during start-up; log tail:\n%s", name, tailString(p.Log(), 3000))
	}
	return p
}

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
	for i := 0; i < nServers; i++ {
		args := []string{"--server", "--bootstrap-expect", strconv.Itoa(nServers)}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := startAgent(t, bin, "fs"+strconv.Itoa(i+1), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		c.servers = append(c.servers, p)
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
	var maxConns, minConns atomic.Int64
	minConns.Store(1 << 30)
	var samples atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 10000; i++ { // bounded: 100 s
			conns, err := procServerConns(client.Pid(), cl.rpcPorts)
			if err == nil {
				n := int64(len(conns))
				if n > maxConns.Load() {
					maxConns.Store(n)
				}
				if n < minConns.Load() {
					minConns.Store(n)
				}
				samples.Add(1)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// 1,000 readers in flight at once; each reads a few times so the
	// /proc sampler sees the connection table during the load.
	const readers, readsPerReader = 1000, 3
	urls := []string{base + "/v1/health/service/web", base + "/v1/kv/e2e/k"}
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
	t0 := time.Now()
	close(startGate)
	wg.Wait()
	elapsed := time.Since(t0)
	close(stop)
	sampler.Wait()

	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d reads from %d concurrent readers failed; first: %s", n, readers*readsPerReader, readers, errMsg)
	}
	t.Logf("%d reads from %d concurrent readers through %s in %v; /proc samples=%d min=%d max=%d server connections",
		readers*readsPerReader, readers, client.Name, elapsed.Round(time.Millisecond), samples.Load(), minConns.Load(), maxConns.Load())
	if samples.Load() == 0 {
		t.Fatal("no /proc sample taken")
	}
	if maxConns.Load() != 1 || minConns.Load() != 1 {
		t.Fatalf("client held between %d and %d server connections during the reads, want exactly 1", minConns.Load(), maxConns.Load())
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

// rawConn dials the server RPC port.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectClosed reads from c until the server closes it; a timeout (the
// server kept it open) fails the test.
func expectClosed(t *testing.T, what string, c net.Conn, within time.Duration) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open after %v", what, within)
		}
		t.Logf("%s: closed by server (%v)", what, err)
		return
	}
	t.Fatalf("%s: server kept sending", what)
}

// expectStreamClosed reads from a yamux stream until it ends: the server
// closed the stream without a response.
func expectStreamClosed(t *testing.T, what string, st *yamux.Stream, within time.Duration) {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(st)
	if errors.Is(err, yamux.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: stream still open after %v", what, within)
	}
	if len(b) != 0 {
		t.Fatalf("%s: server answered %d bytes instead of closing", what, len(b))
	}
	t.Logf("%s: stream closed by server (err=%v)", what, err)
}

// yamuxSession starts a yamux client session the way rpc.Dial does
// (protocol byte 0x01 first) over a raw connection.
func yamuxSession(t *testing.T, addr string) (net.Conn, *yamux.Session) {
	t.Helper()
	c := rawConn(t, addr)
	if _, err := c.Write([]byte{0x01}); err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	s, err := yamux.Client(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func testBadInput(t *testing.T, hc *http.Client, cl *e2eCluster, client *agenttest.Proc) {
	target, err := cl.connectedServer(client)
	if err != nil {
		t.Fatal(err)
	}
	addr := target.RPCAddr()
	t.Logf("hostile input to %s (%s), which %s is connected to", target.Name, addr, client.Name)
	rejectedBefore, _ := e2eMetric(hc, target, "cairn_rpc_rejected_total")

	// A well-behaved client doing reads throughout.
	base := "http://" + client.HTTPAddr()
	stop := make(chan struct{})
	var reads, readErrs atomic.Int64
	var lastErr atomic.Value
	var rd sync.WaitGroup
	for w := 0; w < 4; w++ {
		rd.Add(1)
		go func(w int) {
			defer rd.Done()
			urls := []string{base + "/v1/kv/e2e/k", base + "/v1/health/service/web"}
			pace := time.NewTicker(2 * time.Millisecond) // a steady, light load
			defer pace.Stop()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				if _, _, err := e2eGet(hc, urls[(w+i)%2], 5*time.Second); err != nil {
					readErrs.Add(1)
					lastErr.Store(err.Error())
				}
				reads.Add(1)
			}
		}(w)
	}

	// 1. Random bytes (first byte is no protocol byte).
	junk := make([]byte, 4096)
	rand.Read(junk)
	junk[0] = 0xA7
	c := rawConn(t, addr)
	c.Write(junk)
	expectClosed(t, "random bytes", c, 3*time.Second)

	// 1b. The RPC protocol byte followed by random bytes (garbage yamux).
	rand.Read(junk)
	junk[0], junk[1] = 0x01, 0x9C
	c = rawConn(t, addr)
	c.Write(junk)
	expectClosed(t, "protocol byte + random bytes", c, 3*time.Second)

	// 2. A truncated yamux frame header, then the write side closed.
	c = rawConn(t, addr)
	c.Write([]byte{0x01, 0x00, 0x00, 0x00})
	c.(*net.TCPConn).CloseWrite()
	expectClosed(t, "truncated yamux frame", c, 3*time.Second)

	// 2b. A valid session whose request frame is truncated: the length
	// prefix announces 1000 bytes, 10 arrive, then the stream is half-closed.
	_, sess := yamuxSession(t, addr)
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var pre [4]byte
	binary.BigEndian.PutUint32(pre[:], 1000)
	st.Write(append(pre[:], make([]byte, 10)...))
	st.Close() // FIN: no more bytes will come
	expectStreamClosed(t, "truncated request frame", st, 5*time.Second)
	sess.Close()

	// 3. A 100 MB length prefix on a request stream: refused before any
	// allocation, the stream is closed.
	_, sess = yamuxSession(t, addr)
	st, err = sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(pre[:], 100<<20)
	st.Write(pre[:])
	st.Write(make([]byte, 1024))
	expectStreamClosed(t, "100 MB request length prefix", st, 5*time.Second)
	sess.Close()

	// 3b. A yamux data frame announcing 100 MB (beyond any receive window):
	// the whole connection is closed.
	c = rawConn(t, addr)
	hdr := make([]byte, 13)
	hdr[0] = 0x01                                  // ProtoRPC
	hdr[1], hdr[2] = 0, 0                          // yamux version 0, type data
	binary.BigEndian.PutUint16(hdr[3:5], 0x1)      // SYN
	binary.BigEndian.PutUint32(hdr[5:9], 1)        // stream 1
	binary.BigEndian.PutUint32(hdr[9:13], 100<<20) // length
	c.Write(hdr)
	c.Write(make([]byte, 64<<10))
	expectClosed(t, "100 MB yamux frame", c, 5*time.Second)

	// Let the readers run a little past the attacks, then stop them.
	past := reads.Load()
	testutil.Eventually(t, 10*time.Second, "reads after the attacks", func() error {
		if n := reads.Load() - past; n < 20 {
			return fmt.Errorf("%d reads since the last attack", n)
		}
		return nil
	})
	close(stop)
	rd.Wait()
	if n := readErrs.Load(); n > 0 {
		t.Fatalf("the well-behaved client saw %d errors in %d reads; last: %v", n, reads.Load(), lastErr.Load())
	}
	if reads.Load() < 20 {
		t.Fatalf("only %d reads completed during the attacks", reads.Load())
	}
	now, err := cl.connectedServer(client)
	if err != nil || now != target {
		t.Fatalf("client's connection moved or broke during the attacks: now %v (%v), want %s", now, err, target.Name)
	}
	rejectedAfter, err := e2eMetric(hc, target, "cairn_rpc_rejected_total")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clean reads during the attacks; %s rejected %v connections/streams", reads.Load(), target.Name, rejectedAfter-rejectedBefore)
	if rejectedAfter-rejectedBefore < 4 {
		t.Fatalf("cairn_rpc_rejected_total grew by %v, want >= 4", rejectedAfter-rejectedBefore)
	}
}

type kvEntry struct {
	Key         string
	Value       []byte
	ModifyIndex uint64
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
	type result struct {
		body []byte
		idx  uint64
		err  error
		at   time.Time
	}
	blocked := make(chan result, 1)
	go func() {
		b, i, err := e2eGet(hc, fmt.Sprintf("%s/v1/kv/e2e/x?index=%d&wait=30s", base, idx), 40*time.Second)
		blocked <- result{b, i, err, time.Now()}
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
	stopReaders := make(chan struct{})
	var inflight sync.WaitGroup
	var acrossOK, acrossErr atomic.Int64
	var acrossLast atomic.Value
	for w := 0; w < 32; w++ {
		inflight.Add(1)
		go func(w int) {
			defer inflight.Done()
			urls := []string{base + "/v1/health/service/web", base + "/v1/kv/e2e/k", base + "/v1/kv/e2e/k?stale"}
			for i := 0; i < 100000; i++ {
				select {
				case <-stopReaders:
					return
				default:
				}
				if _, _, err := e2eGet(hc, urls[(w+i)%3], 15*time.Second); err != nil {
					acrossErr.Add(1)
					acrossLast.Store(err.Error())
				} else {
					acrossOK.Add(1)
				}
			}
		}(w)
	}
	testutil.Eventually(t, 10*time.Second, "readers in flight before the kill", func() error {
		if n := acrossOK.Load(); n < 32 {
			return fmt.Errorf("%d reads so far", n)
		}
		return nil
	})

	victim.Kill()
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

	past := acrossOK.Load()
	testutil.Eventually(t, 10*time.Second, "reads after the recovery", func() error {
		if n := acrossOK.Load() - past; n < 32 {
			return fmt.Errorf("%d reads since the recovery", n)
		}
		return nil
	})
	close(stopReaders)
	inflight.Wait()
	t.Logf("reads in flight across the kill: %d ok, %d failed", acrossOK.Load(), acrossErr.Load())
	if n := acrossErr.Load(); n > 0 {
		t.Fatalf("%d reads in flight across the kill failed; last: %v", n, acrossLast.Load())
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

	// The blocking query must still be pending (or re-armed), and must
	// complete with the new value once it is written.
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
