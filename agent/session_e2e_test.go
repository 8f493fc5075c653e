package agent_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// sessionCluster is three servers and three client agents, each with an
// official-client handle. Servers accept TTLs from 1s (session_ttl_min)
// so TTL lapses take seconds, not tens of them.
type sessionCluster struct {
	bin     string
	servers []*agenttest.Proc
	clients []*agenttest.Proc
	api     map[string]*api.Client // by agent name
}

func (c *sessionCluster) client(t *testing.T, name string) *api.Client {
	t.Helper()
	if cl := c.api[name]; cl != nil {
		return cl
	}
	t.Fatalf("no agent %s", name)
	return nil
}

func startSessionCluster(t *testing.T) *sessionCluster {
	t.Helper()
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	bin := agenttest.Binary(t)
	cfg := gossipConfigDir(t, map[string]string{"sessions.json": `{"session_ttl_min": "1s"}`})
	c := &sessionCluster{bin: bin, api: map[string]*api.Client{}}
	join := ""
	for i := range 3 {
		args := []string{"--server", "--bootstrap-expect", "3", "--config-dir", cfg}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := startAgent(t, bin, fmt.Sprintf("s%d", i+1), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		c.servers = append(c.servers, p)
	}
	for i := range 3 {
		c.clients = append(c.clients, startAgent(t, bin, fmt.Sprintf("c%d", i+1), "--retry-join", join))
	}
	for _, p := range append(append([]*agenttest.Proc{}, c.servers...), c.clients...) {
		cl, err := api.NewClient(&api.Config{Address: p.HTTPAddr(), Scheme: "http"})
		if err != nil {
			t.Fatal(err)
		}
		c.api[p.Name] = cl
	}
	// Sessions need their node in the catalog with serfHealth passing.
	testutil.Eventually(t, 90*time.Second, "every agent registered with serfHealth passing", func() error {
		checks, _, err := c.api["s1"].Health().State(api.HealthPassing, nil)
		if err != nil {
			return err
		}
		ok := map[string]bool{}
		for _, hc := range checks {
			if hc.CheckID == "serfHealth" {
				ok[hc.Node] = true
			}
		}
		for name := range c.api {
			if !ok[name] {
				return fmt.Errorf("%s has no passing serfHealth yet", name)
			}
		}
		return nil
	})
	return c
}

// TestSessionsAndLocksE2E drives sessions, locks and semaphores with the
// official client through client and server agents of one cluster.
func TestSessionsAndLocksE2E(t *testing.T) {
	c := startSessionCluster(t)
	runSteps(t, c, []step[*sessionCluster]{
		{"SessionAPI", testSessionAPI},
		{"LockExclusion", testLockExclusion},
		{"SemaphoreBound", testSemaphoreBound},
		{"TTLLapseReleases", testTTLLapseReleases},
		{"AgentKillReleases", testAgentKillReleases},
		{"LeaderKillKeepsLock", testLeaderKillKeepsLock},
		{"CLILock", testCLILock},
	})
}

func testSessionAPI(t *testing.T, c *sessionCluster) {
	cl := c.client(t, "c1")
	id, _, err := cl.Session().Create(&api.SessionEntry{Name: "api", TTL: "30s", Behavior: api.SessionBehaviorDelete}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, meta, err := cl.Session().Info(id, nil)
	if err != nil || info == nil {
		t.Fatalf("info: %v %+v", err, info)
	}
	if info.Node != "c1" || info.LockDelay != 15*time.Second || info.Behavior != "delete" || info.TTL != "30s" ||
		len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" || meta.LastIndex == 0 {
		t.Fatalf("info %+v meta %+v", info, meta)
	}
	testutil.Eventually(t, 10*time.Second, "the session in a stale read of a follower", func() error {
		mine, _, err := c.client(t, "s2").Session().Node("c1", &api.QueryOptions{AllowStale: true})
		if err != nil || len(mine) == 0 {
			return fmt.Errorf("node sessions: %v %+v", err, mine)
		}
		return nil
	})
	if _, _, err := cl.Session().Renew(id, nil); err != nil {
		t.Fatal(err)
	}
	ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "api/held", Value: []byte("v"), Session: id}, nil)
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	pair, _, err := cl.KV().Get("api/held", nil)
	if err != nil || pair == nil || pair.Session != id || pair.LockIndex != 1 {
		t.Fatalf("held pair %+v %v", pair, err)
	}
	// A blocking list wakes on the destroy, which deletes the key
	// (Behavior delete) in the same write.
	_, lm, err := cl.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan error, 1)
	go func() {
		list, _, err := cl.Session().List(&api.QueryOptions{WaitIndex: lm.LastIndex, WaitTime: 20 * time.Second})
		for _, s := range list {
			if s.ID == id && err == nil {
				err = errors.New("destroyed session still listed")
			}
		}
		woke <- err
	}()
	if _, err := c.client(t, "c2").Session().Destroy(id, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	if pair, _, err := cl.KV().Get("api/held", nil); err != nil || pair != nil {
		t.Fatalf("key of a destroyed delete-session: %+v %v", pair, err)
	}
	if e, _, err := cl.Session().Renew(id, nil); err != nil || e != nil {
		t.Fatalf("renew of a destroyed session: %+v %v", e, err)
	}
	// Consul refuses a session on a node whose check is critical.
	if _, _, err := cl.Session().Create(&api.SessionEntry{Node: "c1", NodeChecks: []string{"no-such-check"}}, nil); err == nil {
		t.Fatal("session on a missing check created")
	}
}

// testLockExclusion: three contenders on three agents hand one lock over
// 100 times; each logs enter/exit lines to one append-only file, which
// must never show two holders.
func testLockExclusion(t *testing.T, c *sessionCluster) {
	const handovers = 100
	record := filepath.Join(t.TempDir(), "record")
	f, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, name := range []string{"c1", "c2", "s1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < handovers {
				l, err := c.api[name].LockOpts(&api.LockOptions{Key: "excl/lock", SessionTTL: "10s", LockDelay: time.Millisecond})
				if err != nil {
					errs <- err
					return
				}
				lost, err := l.Lock(nil)
				if err != nil {
					errs <- fmt.Errorf("%s: lock: %w", name, err)
					return
				}
				if _, err := fmt.Fprintf(f, "enter %s\n", name); err != nil {
					errs <- err
					return
				}
				select {
				case <-lost:
					errs <- fmt.Errorf("%s lost the lock inside its critical section", name)
					return
				default:
				}
				if _, err := fmt.Fprintf(f, "exit %s\n", name); err != nil {
					errs <- err
					return
				}
				done.Add(1)
				if err := l.Unlock(); err != nil {
					errs <- fmt.Errorf("%s: unlock: %w", name, err)
					return
				}
				_ = l.Destroy()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rf, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	holder, enters, who := "", 0, map[string]int{}
	sc := bufio.NewScanner(rf)
	for line := 1; sc.Scan(); line++ {
		verb, name, _ := strings.Cut(sc.Text(), " ")
		switch {
		case verb == "enter" && holder == "":
			holder = name
			enters++
			who[name]++
		case verb == "exit" && holder == name:
			holder = ""
		default:
			t.Fatalf("line %d %q while %q holds the lock", line, sc.Text(), holder)
		}
	}
	if enters < handovers {
		t.Fatalf("%d critical sections, want %d", enters, handovers)
	}
	if len(who) < 2 {
		t.Fatalf("one contender took every turn: %v", who)
	}
	t.Logf("critical sections per contender: %v", who)
}

// testSemaphoreBound: five contenders on a limit-2 semaphore never have
// more than two holders at once.
func testSemaphoreBound(t *testing.T, c *sessionCluster) {
	const rounds = 4
	var holders, most atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	names := []string{"c1", "c2", "c3", "s2", "s3"}
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				sem, err := c.api[name].SemaphoreOpts(&api.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "10s"})
				if err != nil {
					errs <- err
					return
				}
				lost, err := sem.Acquire(nil)
				if err != nil {
					errs <- fmt.Errorf("%s: acquire: %w", name, err)
					return
				}
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				select {
				case <-lost:
					errs <- fmt.Errorf("%s lost its slot", name)
				case <-time.After(20 * time.Millisecond): // hold the slot briefly so holders overlap
				}
				holders.Add(-1)
				if err := sem.Release(); err != nil {
					errs <- fmt.Errorf("%s: release: %w", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := most.Load(); m > 2 || m < 1 {
		t.Fatalf("at most %d holders at once, want 1..2", m)
	}
	t.Logf("most holders at once: %d", most.Load())
}

// testTTLLapseReleases: a lock held by an unrenewed TTL session is free
// for another session no sooner than 2×TTL + lock-delay (the lapse, then
// the lock-delay) and no later (plus slack for a loaded machine).
func testTTLLapseReleases(t *testing.T, c *sessionCluster) {
	const ttl, delay = 1 * time.Second, 500 * time.Millisecond
	cl := c.client(t, "c2")
	// The leader arms the TTL timer between these two instants.
	before := time.Now()
	holder, _, err := cl.Session().CreateNoChecks(&api.SessionEntry{TTL: ttl.String(), LockDelay: delay}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "ttl/lock", Session: holder}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	other, _, err := cl.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var took, sinceBefore time.Duration
	testutil.Eventually(t, 30*time.Second, "another session to take the lapsed lock", func() error {
		ok, _, err := cl.KV().Acquire(&api.KVPair{Key: "ttl/lock", Session: other}, nil)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not yet")
		}
		took, sinceBefore = time.Since(created), time.Since(before)
		return nil
	})
	const slack = 3 * time.Second
	if sinceBefore < 2*ttl+delay || took > 2*ttl+delay+slack {
		t.Fatalf("lock taken over %v after the holder's create (%v counting its request); want 2×TTL+lock-delay = %v (+%v slack)", took, sinceBefore, 2*ttl+delay, slack)
	}
	t.Logf("lapsed lock taken over after %v (2×TTL+lock-delay = %v)", took, 2*ttl+delay)
	if s, _, err := cl.Session().Info(holder, nil); err != nil || s != nil {
		t.Fatalf("lapsed session still there: %+v %v", s, err)
	}
}

// testAgentKillReleases: kill -9 the agent whose node holds a lock; once
// serfHealth marks it critical the lock is released, and after the
// lock-delay a contender on another agent gets it.
func testAgentKillReleases(t *testing.T, c *sessionCluster) {
	holder, err := c.client(t, "c3").LockOpts(&api.LockOptions{Key: "kill/lock",
		SessionOpts: &api.SessionEntry{Name: "c3-holder", LockDelay: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Lock(nil); err != nil {
		t.Fatal(err)
	}
	contender, err := c.client(t, "c1").LockOpts(&api.LockOptions{Key: "kill/lock", SessionTTL: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		_, err := contender.Lock(stop)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("contender got a held lock (err %v)", err)
	case <-time.After(500 * time.Millisecond): // the contender is blocked meanwhile
	}
	c.clients[2].Kill()
	killed := time.Now()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("lock of a killed agent never released")
	}
	t.Logf("contender got the lock %v after kill -9 of the holder's agent", time.Since(killed))
	checks, _, err := c.client(t, "s1").Health().Node("c3", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range checks {
		if hc.CheckID == "serfHealth" && hc.Status != api.HealthCritical {
			t.Fatalf("lock released while c3's serfHealth is %s", hc.Status)
		}
	}
	_ = contender.Unlock()
	_ = contender.Destroy()
}

// testLeaderKillKeepsLock: kill -9 the leader; the holder keeps its lock
// through the election, and a contender does not get it meanwhile.
func testLeaderKillKeepsLock(t *testing.T, c *sessionCluster) {
	holder, err := c.client(t, "c1").LockOpts(&api.LockOptions{Key: "leader/lock", SessionTTL: "10s",
		MonitorRetries: 30, MonitorRetryTime: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := holder.Lock(nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, _, err := c.client(t, "c1").KV().Get("leader/lock", nil)
	if err != nil || pair == nil || pair.Session == "" {
		t.Fatalf("held pair %+v %v", pair, err)
	}
	// The contender's session exists before the leader dies; its Lock
	// calls may fail while there is no leader, and it then tries again:
	// only an acquisition counts.
	cs, _, err := c.client(t, "c2").Session().Create(&api.SessionEntry{Name: "contender"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	contender, err := c.client(t, "c2").LockOpts(&api.LockOptions{Key: "leader/lock", Session: cs})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			lk, err := contender.Lock(stop)
			if err == nil && lk != nil {
				got <- nil
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond): // retry pause after an error
			}
		}
	}()

	old := gossipLeader(t, c.bin, c.servers)
	old.Kill()
	var live []*agenttest.Proc
	for _, s := range c.servers {
		if s != old {
			live = append(live, s)
		}
	}
	nl := gossipLeader(t, c.bin, live)
	t.Logf("leader %s killed, %s leads", old.Name, nl.Name)
	// Well past the election and a few renew periods of the holder.
	deadline := time.After(8 * time.Second)
	for waiting := true; waiting; {
		select {
		case err := <-got:
			t.Fatalf("contender got the lock during the leader change (err %v)", err)
		case <-lost:
			t.Fatal("holder lost its lock during the leader change")
		case <-deadline:
			waiting = false
		}
	}
	after, _, err := c.client(t, "c1").KV().Get("leader/lock", nil)
	if err != nil || after == nil || after.Session != pair.Session || after.LockIndex != pair.LockIndex {
		t.Fatalf("lock after the leader change %+v (before %+v) %v", after, pair, err)
	}
	// The contender was really waiting: it gets the lock on release.
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("contender did not get the released lock")
	}
	_ = contender.Unlock()
}

// lockProc is one `cairn lock` process run in the background.
type lockProc struct {
	cmd    *exec.Cmd
	stderr *agenttest.LockedBuffer
	done   chan int // exit code
}

func startCairnLock(t *testing.T, bin, httpAddr, dir string, args ...string) *lockProc {
	t.Helper()
	p := &lockProc{stderr: &agenttest.LockedBuffer{}, done: make(chan int, 1)}
	p.cmd = exec.Command(bin, append([]string{"lock"}, args...)...)
	p.cmd.Env = append(os.Environ(), "CAIRN_HTTP_ADDR="+httpAddr)
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		p.done <- code
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
	})
	return p
}

func (p *lockProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case code := <-p.done:
		return code
	case <-time.After(timeout):
		t.Fatalf("cairn lock still running after %v; stderr:\n%s", timeout, p.stderr.String())
		return 0
	}
}

// testCLILock: `cairn lock` runs its child only while it holds the lock;
// a second one waits for it; destroying the holder's session from outside
// kills the child and fails the command.
func testCLILock(t *testing.T, c *sessionCluster) {
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	read := func() string {
		b, _ := os.ReadFile(record)
		return string(b)
	}
	// Earlier steps killed c3 and the first leader: c1 and c2 live.
	kv := c.client(t, "c1").KV()
	holder := func() string {
		pair, _, err := kv.Get("cli/job/.lock", nil)
		if err != nil || pair == nil {
			return ""
		}
		return pair.Session
	}
	a := startCairnLock(t, c.bin, c.clients[0].HTTPAddr(), dir, "cli/job",
		"echo A-start >> record; while [ ! -f stopA ]; do sleep 0.05; done; echo A-end >> record")
	testutil.Eventually(t, 30*time.Second, "A's child to start", func() error {
		if !strings.Contains(read(), "A-start") {
			return errors.New("not yet")
		}
		return nil
	})
	sessA := holder()
	if info, _, err := c.client(t, "c1").Session().Info(sessA, nil); err != nil || info == nil || info.Node != "c1" {
		t.Fatalf("A's child runs but the lock is held by %q (%+v, %v)", sessA, info, err)
	}
	b := startCairnLock(t, c.bin, c.clients[1].HTTPAddr(), dir, "cli/job",
		"echo $$ > pidB; echo B-start >> record; while true; do sleep 0.05; done") // pidB is whole once B-start shows
	select {
	case code := <-b.done:
		t.Fatalf("second cairn lock exited (%d) instead of waiting: %s", code, b.stderr.String())
	case <-time.After(1500 * time.Millisecond): // the window in which B must not start
	}
	if strings.Contains(read(), "B-start") {
		t.Fatalf("B's child ran while A held the lock:\n%s", read())
	}
	if err := os.WriteFile(filepath.Join(dir, "stopA"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("A exited %d: %s", code, a.stderr.String())
	}
	testutil.Eventually(t, 30*time.Second, "B's child to start after A released", func() error {
		if !strings.Contains(read(), "B-start") {
			return errors.New("not yet")
		}
		return nil
	})
	if rec := read(); strings.Index(rec, "A-end") > strings.Index(rec, "B-start") {
		t.Fatalf("B started before A ended:\n%s", rec)
	}
	sessB := holder()
	if sessB == "" || sessB == sessA {
		t.Fatalf("lock held by %q after the handover (A was %q)", sessB, sessA)
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "pidB"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client(t, "c1").Session().Destroy(sessB, nil); err != nil {
		t.Fatal(err)
	}
	if code := b.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("B exited 0 after losing its lock: %s", b.stderr.String())
	}
	if !strings.Contains(b.stderr.String(), "Lock lost") {
		t.Fatalf("B's stderr does not say the lock was lost: %s", b.stderr.String())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("B's child %d still alive after the lock was lost (kill 0: %v)", pid, err)
	}
}
