package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// The pause test (issue 13): SIGSTOP the Raft leader while writers keep
// going through every server's HTTP API, SIGCONT it, and check from the
// final state that each write was applied at most once and that every
// pauseAnswer told the truth: "true" was applied, "false" and definite errors
// were not, and only outcome-unknown answers may go either way.

// pauseOpKind is what one workload operation does; each works on a key of
// its own, so the final state says exactly what that operation did.
type pauseOpKind int

const (
	opInsert pauseOpKind = iota // PUT u/<id>?cas=0 with value <id>
	opPut                       // PUT p/<id> with value <id> (a fresh key)
	opCAS                       // PUT c/<id>=v0, read its index, PUT c/<id>?cas=<index> with v1
)

// pauseAnswer is how a server answered the one write of an operation.
type pauseAnswer int

const (
	ansTrue     pauseAnswer = iota // 200 true
	ansFalse                       // 200 false
	ansDefinite                    // an error that says the write did not happen
	ansUnknown                     // "outcome unknown", or no pauseAnswer at all
)

func (a pauseAnswer) String() string {
	return [...]string{"true", "false", "error", "unknown"}[a]
}

type pauseOp struct {
	kind       pauseOpKind
	id         string
	via        string // server name that received the write
	start, end time.Time
	ans        pauseAnswer
	detail     string
}

// pauseHistory records the operations of all writers.
type pauseHistory struct {
	mu  sync.Mutex
	ops []pauseOp
}

func (h *pauseHistory) add(op pauseOp) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// pauseClient talks to one agent's HTTP API.
type pauseClient struct {
	hc   *http.Client
	addr string
}

// put writes value to key with the given query and classifies the pauseAnswer.
func (c pauseClient) put(key, query, value string) (pauseAnswer, string) {
	u := "http://" + c.addr + "/v1/kv/" + key
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(http.MethodPut, u, strings.NewReader(value))
	if err != nil {
		return ansUnknown, err.Error()
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return ansUnknown, err.Error() // no pauseAnswer: it may have been applied
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := strings.TrimSpace(string(b))
	switch {
	case resp.StatusCode == http.StatusOK && body == "true":
		return ansTrue, body
	case resp.StatusCode == http.StatusOK && body == "false":
		return ansFalse, body
	case strings.Contains(body, "outcome unknown"):
		return ansUnknown, body
	}
	return ansDefinite, fmt.Sprintf("%d %s", resp.StatusCode, body)
}

type pauseKVEntry struct {
	Key         string `json:"Key"`
	Value       []byte `json:"Value"`
	CreateIndex uint64 `json:"CreateIndex"`
	ModifyIndex uint64 `json:"ModifyIndex"`
}

// get reads key (or, with recurse, the tree under it) with extra query.
func (c pauseClient) get(key, query string) ([]pauseKVEntry, error) {
	u := "http://" + c.addr + "/v1/kv/" + key
	if query != "" {
		u += "?" + query
	}
	resp, err := c.hc.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", key, resp.StatusCode, b)
	}
	var out []pauseKVEntry
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", key, err)
	}
	return out, nil
}

func (c pauseClient) leader() string {
	resp, err := c.hc.Get("http://" + c.addr + "/v1/status/leader")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var l string
	if json.NewDecoder(resp.Body).Decode(&l) != nil {
		return ""
	}
	return l
}

// runOp performs one operation of kind through c and records it.
func runOp(c pauseClient, via string, kind pauseOpKind, id string) (pauseOp, bool) {
	op := pauseOp{kind: kind, id: id, via: via, start: time.Now()}
	switch kind {
	case opInsert:
		op.ans, op.detail = c.put("u/"+id, "cas=0", id)
	case opPut:
		op.ans, op.detail = c.put("p/"+id, "", id)
	case opCAS:
		// Set-up steps: skip the operation unless they plainly succeed.
		if a, _ := c.put("c/"+id, "", "v0"); a != ansTrue {
			return op, false
		}
		es, err := c.get("c/"+id, "")
		if err != nil || len(es) != 1 {
			return op, false
		}
		op.start = time.Now()
		op.ans, op.detail = c.put("c/"+id, "cas="+strconv.FormatUint(es[0].ModifyIndex, 10), "v1")
	}
	op.end = time.Now()
	return op, true
}

// checkPauseHistory returns every violation of "applied at most once, and
// answered truthfully" found in the final state.
func checkPauseHistory(ops []pauseOp, final map[string]pauseKVEntry) []string {
	var bad []string
	report := func(op pauseOp, format string, args ...any) {
		bad = append(bad, fmt.Sprintf("%s (via %s, answered %s %q): %s", op.id, op.via, op.ans, op.detail, fmt.Sprintf(format, args...)))
	}
	for _, op := range ops {
		switch op.kind {
		case opInsert:
			e, ok := final["u/"+op.id]
			applied := ok && string(e.Value) == op.id
			switch {
			case ok && !applied:
				report(op, "key holds %q, not this insert's value", e.Value)
			case op.ans == ansTrue && !applied:
				report(op, "acknowledged insert is missing")
			case op.ans == ansFalse && applied:
				report(op, "insert answered false, yet its value is stored: the request was applied and answered as if it was not")
			case op.ans == ansDefinite && applied:
				report(op, "insert failed with a definite error, yet it was applied")
			}
		case opPut:
			e, ok := final["p/"+op.id]
			switch {
			case ok && e.ModifyIndex != e.CreateIndex:
				report(op, "put applied more than once (CreateIndex %d, ModifyIndex %d)", e.CreateIndex, e.ModifyIndex)
			case op.ans == ansTrue && !ok:
				report(op, "acknowledged put is missing")
			case op.ans == ansDefinite && ok:
				report(op, "put failed with a definite error, yet it was applied")
			}
		case opCAS:
			e, ok := final["c/"+op.id]
			v := string(e.Value)
			switch {
			case !ok:
				report(op, "acknowledged set-up write is missing")
			case op.ans == ansTrue && v != "v1":
				report(op, "acknowledged CAS is missing (value %q)", v)
			case (op.ans == ansFalse || op.ans == ansDefinite) && v != "v0":
				report(op, "CAS answered %s, yet it was applied (value %q)", op.ans, v)
			}
		}
	}
	return bad
}

// TestPauseLeaderWritesApplyAtMostOnce is the regression test of issue 13:
// before the fix a leader resumed from SIGSTOP answered ErrLeadershipLost
// writes as "not leader" and resubmitted them through the new leader, so
// inserts answered false were applied, CAS answered false was applied and
// puts were applied twice; followers held requests forwarded to the paused
// leader until it came back.
func TestPauseLeaderWritesApplyAtMostOnce(t *testing.T) {
	const (
		rounds         = 3
		writersPerNode = 4
		pauseFor       = 5 * time.Second
		// failoverWithin bounds how long a healthy server may hold a write
		// it forwarded to the paused leader: a new leader is elected in
		// about a second (fast Raft timings), far less than pauseFor.
		failoverWithin = 3500 * time.Millisecond
	)
	procs := startPauseCluster(t)
	hc := pauseHTTPClient(t, 64)
	clients := make([]pauseClient, len(procs))
	for i, p := range procs {
		clients[i] = pauseClient{hc: hc, addr: p.HTTPAddr()}
	}

	var hist pauseHistory
	stopWriters := startPauseWriters(procs, clients, writersPerNode, &hist)
	pauses := pauseLeaders(t, procs, clients, &hist, rounds, pauseFor)
	testutil.Eventually(t, 30*time.Second, "a leader after the last pause", func() error {
		_, err := agreedLeader(clients)
		return err
	})
	stopWriters()
	final := readPauseKeys(t, clients[0])

	ops := hist.ops
	counts := map[pauseAnswer]int{}
	for _, op := range ops {
		counts[op.ans]++
	}
	t.Logf("%d operations: %d true, %d false, %d definite errors, %d outcome unknown",
		len(ops), counts[ansTrue], counts[ansFalse], counts[ansDefinite], counts[ansUnknown])
	if counts[ansTrue] < 100 {
		t.Fatalf("only %d writes acknowledged: the workload did not run", counts[ansTrue])
	}
	bad := checkPauseHistory(ops, final)
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-20)
			break
		}
		t.Error(b)
	}
	if counts[ansUnknown] == 0 {
		t.Errorf("no write was answered outcome unknown although the leader was paused mid-write %d times", rounds)
	}
	// A healthy server must not hold a request it forwarded to the paused
	// leader until that leader comes back.
	if slow := heldWrites(ops, pauses, failoverWithin); len(slow) > 0 {
		t.Errorf("%d writes to healthy servers were held while the leader was paused, e.g. %v", len(slow), slow[:min(len(slow), 5)])
	}
}

// startPauseWriters starts writersPerNode writers per server, each
// running insert, put and CAS in turn into hist; stop ends them.
func startPauseWriters(procs []*agenttest.Proc, clients []pauseClient, writersPerNode int, hist *pauseHistory) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writersPerNode*len(procs); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			node := w % len(procs)
			for n := 0; n < 100000; n++ {
				select {
				case <-done:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, n)
				if op, ok := runOp(clients[node], procs[node].Name, pauseOpKind(n%3), id); ok {
					hist.add(op)
				}
			}
		}(w)
	}
	return func() { close(done); wg.Wait() }
}

// pauseWindow is when a server was frozen.
type pauseWindow struct {
	who         string
	from, until time.Time
}

// pauseLeaders, rounds times, waits for an agreed leader and for writes to
// flow through it, then freezes it (SIGSTOP) for pauseFor and resumes it.
func pauseLeaders(t *testing.T, procs []*agenttest.Proc, clients []pauseClient, hist *pauseHistory, rounds int, pauseFor time.Duration) []pauseWindow {
	t.Helper()
	var pauses []pauseWindow
	for r := 0; r < rounds; r++ {
		var leader *agenttest.Proc
		testutil.Eventually(t, 30*time.Second, "a leader all servers agree on", func() error {
			l, err := agreedLeader(clients)
			if err != nil {
				return err
			}
			for _, p := range procs {
				if p.RPCAddr() == l {
					leader = p
					return nil
				}
			}
			return fmt.Errorf("leader %q is none of ours", l)
		})
		// Let writes flow through the leader, then freeze it mid-write.
		testutil.Eventually(t, 10*time.Second, "writes flowing", func() error {
			hist.mu.Lock()
			n := len(hist.ops)
			hist.mu.Unlock()
			if n < (r+1)*60 {
				return fmt.Errorf("%d operations so far", n)
			}
			return nil
		})
		leader.Signal(syscall.SIGSTOP)
		from := time.Now()
		t.Logf("round %d: paused leader %s", r, leader.Name)
		// Hold the pause for pauseFor while a new leader takes over; the
		// wait is the fault being injected, not an ordering guess.
		select {
		case <-time.After(pauseFor):
		case <-t.Context().Done():
		}
		leader.Signal(syscall.SIGCONT)
		pauses = append(pauses, pauseWindow{who: leader.Name, from: from, until: time.Now()})
		t.Logf("round %d: resumed %s", r, leader.Name)
	}
	return pauses
}

// readPauseKeys reads every key the writers use, consistently.
func readPauseKeys(t *testing.T, c pauseClient) map[string]pauseKVEntry {
	t.Helper()
	final := map[string]pauseKVEntry{}
	testutil.Eventually(t, 30*time.Second, "final state read", func() error {
		for _, p := range []string{"u/", "p/", "c/"} {
			es, err := c.get(p, "recurse&consistent")
			if err != nil {
				return err
			}
			for _, e := range es {
				final[e.Key] = e
			}
		}
		return nil
	})
	return final
}

// heldWrites lists the writes sent to a healthy server during a pause
// (early enough for a failover) that took longer than failoverWithin.
func heldWrites(ops []pauseOp, pauses []pauseWindow, failoverWithin time.Duration) []string {
	var slow []string
	for _, op := range ops {
		for _, p := range pauses {
			if op.via == p.who || op.start.Before(p.from) || op.start.After(p.until.Add(-failoverWithin)) {
				continue
			}
			if d := op.end.Sub(op.start); d > failoverWithin {
				slow = append(slow, fmt.Sprintf("%s via %s took %v (answered %s %q)", op.id, op.via, d.Round(time.Millisecond), op.ans, op.detail))
			}
		}
	}
	return slow
}

// pauseHTTPClient is a client for the pause tests: its timeout is longer
// than a pause, so a held request gets its pauseAnswer.
func pauseHTTPClient(t *testing.T, maxIdle int) *http.Client {
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxIdle}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// agreedLeader returns the leader every server names, or an error.
func agreedLeader(clients []pauseClient) (string, error) {
	first := ""
	for _, c := range clients {
		l := c.leader()
		if l == "" {
			return "", fmt.Errorf("%s sees no leader", c.addr)
		}
		if first != "" && l != first {
			return "", fmt.Errorf("leaders disagree: %s vs %s", first, l)
		}
		first = l
	}
	return first, nil
}

// startPauseCluster starts three server agents with fast Raft timings and
// waits for them to agree on a leader; under -short it skips the test.
func startPauseCluster(t *testing.T) []*agenttest.Proc {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process raft test")
	}
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	procs, _ := startServerAgents(t, bin, "s", 3)
	hc := &http.Client{Timeout: 2 * time.Second}
	var clients []pauseClient
	for _, p := range procs {
		clients = append(clients, pauseClient{hc: hc, addr: p.HTTPAddr()})
	}
	testutil.Eventually(t, 60*time.Second, "all servers agree on a leader", func() error {
		_, err := agreedLeader(clients)
		return err
	})
	// The leader's barrier and first writes must be through before the
	// workload starts, or its first operations only measure start-up.
	testutil.Eventually(t, 30*time.Second, "a first write", func() error {
		if a, d := clients[0].put("ready", "", "1"); a != ansTrue {
			return errors.New(d)
		}
		return nil
	})
	return procs
}
