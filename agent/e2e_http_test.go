package agent_test

// HTTP, metrics and process helpers shared by the agent e2e tests.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
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

// step is one subtest of an e2e test run on a shared cluster x.
type step[T any] struct {
	name string
	run  func(*testing.T, T)
}

// runSteps runs steps as subtests, in order, on x: one cluster, one
// set-up; a step may rely on what the earlier ones did.
func runSteps[T any](t *testing.T, x T, steps []step[T]) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.run(t, x) })
	}
}

// startServerAgents starts n server agents named prefix1…prefixN
// (--bootstrap-expect n), each after the first joining the first's serf
// LAN address, which it returns too.
func startServerAgents(t *testing.T, bin, prefix string, n int) ([]*agenttest.Proc, string) {
	t.Helper()
	var servers []*agenttest.Proc
	join := ""
	for i := range n {
		args := []string{"--server", "--bootstrap-expect", strconv.Itoa(n)}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := startAgent(t, bin, prefix+strconv.Itoa(i+1), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		servers = append(servers, p)
	}
	return servers, join
}

// readLoad is a set of readers going round a list of URLs through an
// agent until stop, counting the reads that succeeded and failed.
type readLoad struct {
	done    chan struct{}
	wg      sync.WaitGroup
	ok      atomic.Int64
	errs    atomic.Int64
	lastErr atomic.Value
}

// startReadLoad starts workers readers of urls, each reading once per
// pace (0: back to back), every read bounded by timeout.
func startReadLoad(hc *http.Client, workers int, pace, timeout time.Duration, urls ...string) *readLoad {
	rd := &readLoad{done: make(chan struct{})}
	for w := 0; w < workers; w++ {
		rd.wg.Add(1)
		go func(w int) {
			defer rd.wg.Done()
			var tick <-chan time.Time
			if pace > 0 {
				t := time.NewTicker(pace)
				defer t.Stop()
				tick = t.C
			}
			for i := 0; i < 100000; i++ {
				if !rd.wait(tick) {
					return
				}
				if _, _, err := e2eGet(hc, urls[(w+i)%len(urls)], timeout); err != nil {
					rd.errs.Add(1)
					rd.lastErr.Store(err.Error())
				} else {
					rd.ok.Add(1)
				}
			}
		}(w)
	}
	return rd
}

// wait waits for the next tick (none: no wait) and reports whether the
// load is still on.
func (rd *readLoad) wait(tick <-chan time.Time) bool {
	if tick == nil {
		select {
		case <-rd.done:
			return false
		default:
			return true
		}
	}
	select {
	case <-rd.done:
		return false
	case <-tick:
		return true
	}
}

// total is the number of reads made so far.
func (rd *readLoad) total() int64 { return rd.ok.Load() + rd.errs.Load() }

// stop ends the readers and waits for them.
func (rd *readLoad) stop() {
	close(rd.done)
	rd.wg.Wait()
}
