package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// healTimeout bounds the wait for one leader and equal replicas after the
// last fault is undone.
const healTimeout = 60 * time.Second

// Config is one trial.
type Config struct {
	Nemesis  NemesisInfo
	Seed     uint64
	Duration time.Duration // of load and faults, excluding start and checks
	Binary   string        // cairn binary (see Binary)
	// Lane picks the trial's addresses, uids and iptables chains, so
	// trials of different lanes run side by side (CHAOS_PARALLEL); 0 is
	// 127.0.0.31–33.
	Lane int
}

// Result is one trial's outcome.
type Result struct {
	Nemesis string
	Seed    uint64
	Dir     string // artefacts; removed when the trial passed
	Report  Report
	Faults  int
}

// Binary builds cmd/cairn once into dir (world-readable: nodes may run as
// other uids) or returns $CAIRN_TEST_BINARY.
func Binary(t testing.TB, dir string) string {
	t.Helper()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := buildBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectedErrors are error-level log lines a fault explains: a node that
// cannot reach a peer, or finds a peer in a newer term, says so at error
// level. Each pattern names the logger too, so the same words from another
// subsystem still fail the trial. Anything else at error level fails it.
var expectedErrors = []struct{ logger, msg *regexp.Regexp }{
	// Raft replication and elections toward an unreachable peer.
	{regexp.MustCompile(`(^|\.)raft$`), regexp.MustCompile(`^raft: (failed to (heartbeat to|appendEntries to|contact|make requestVote RPC|make pre-vote RPC|get log|send snapshot to|pipeline appendEntries|start pipeline)|peer has newer term, stopping replication)`)},
	// Raft's transport reading from a peer that was killed or cut off.
	{regexp.MustCompile(`(^|\.)raft-net$`), regexp.MustCompile(`^raft-net: failed to (decode incoming command|flush response): .*(connection reset|broken pipe|EOF|timeout|i/o)`)},
	// Gossip probes of a stopped, killed or cut-off member.
	{regexp.MustCompile(`(^|\.)serf\.(lan|wan)$`), regexp.MustCompile(`^memberlist: .*(timeout|i/o|connection refused|connection reset|EOF|broken pipe|no route|operation not permitted)`)},
}

func expectedError(l logLine) bool {
	for _, e := range expectedErrors {
		if e.logger.MatchString(l.Logger) && e.msg.MatchString(l.Msg) {
			return true
		}
	}
	return false
}

// Run runs one trial: a fresh 3-server cluster, the workloads for
// cfg.Duration under the nemesis, then heal and every check. Artefacts
// are kept, and their directory and the seed logged, when a check fails.
func Run(t testing.TB, cfg Config) *Result {
	t.Helper()
	res := &Result{Nemesis: cfg.Nemesis.Name, Seed: cfg.Seed}
	keep := true
	res.Dir = artefactDir(t, cfg, &keep)
	c, env := startTrialCluster(t, cfg, res.Dir)
	ctx := context.Background()
	nem := cfg.Nemesis.New()
	t.Cleanup(func() { _ = nem.Stop(context.Background(), env) })

	h := newHistory(time.Now())
	env.History = h
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	wg := startClients(loadCtx, c, h, cfg.Seed)
	nemErr := runNemesis(loadCtx, cfg.Nemesis.Schedule.orDefault(), nem, env, &res.Faults)
	if err := nem.Stop(ctx, env); err != nil && nemErr == nil {
		nemErr = err
	}
	stopLoad()
	wg.Wait()
	if nemErr != nil {
		res.Report.Other = append(res.Report.Other, "nemesis: "+nemErr.Error())
	}
	check(ctx, c, h, res.Dir, &res.Report)
	c.Stop()
	checkLogs(c, &res.Report)

	f, err := os.Create(filepath.Join(res.Dir, "history.txt"))
	if err == nil {
		_ = h.WriteText(f)
		f.Close()
	}
	keep = !res.Report.OK()
	return res
}

// artefactDir makes the trial's directory; on cleanup it is removed
// unless *keep, the test failed or CHAOS_KEEP is set, in which case its
// path and the command reproducing the trial are logged.
func artefactDir(t testing.TB, cfg Config, keep *bool) string {
	t.Helper()
	dir, err := os.MkdirTemp("", fmt.Sprintf("cairn-chaos-%s-%d-", cfg.Nemesis.Name, cfg.Seed))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if *keep || t.Failed() || os.Getenv("CHAOS_KEEP") != "" {
			t.Logf("chaos: nemesis=%s seed=%d artefacts kept in %s (reproduce: CHAOS_SEED=%d CHAOS_NEMESIS=%s CHAOS_TRIALS=1 CHAOS_DURATION=%s make chaos)",
				cfg.Nemesis.Name, cfg.Seed, dir, cfg.Seed, cfg.Nemesis.Name, cfg.Duration)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// startTrialCluster starts the 3-server cluster in dir, with the
// firewall when the nemesis needs one; both are torn down on cleanup.
func startTrialCluster(t testing.TB, cfg Config, dir string) (*Cluster, *Env) {
	t.Helper()
	separate := os.Geteuid() == 0
	c, err := newCluster(cfg.Binary, dir, cfg.Lane, separate)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Cluster: c, Rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
	t.Cleanup(c.Stop)
	if cfg.Nemesis.Firewall {
		fw, err := newFirewall(cfg.Lane, c.Nodes)
		if err != nil {
			t.Fatalf("chaos: firewall: %v", err)
		}
		env.Firewall = fw
		t.Cleanup(func() {
			if err := fw.Close(); err != nil {
				t.Errorf("chaos: removing iptables rules: %v", err)
			}
		})
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("chaos: cluster did not start: %v", err)
	}
	return c, env
}

// startClients runs the workload clients, each seeded from seed, until
// ctx ends; wait on the group returned.
func startClients(ctx context.Context, c *Cluster, h *History, seed uint64) *sync.WaitGroup {
	var procMu sync.Mutex
	nextProc := clients
	next := func() int {
		procMu.Lock()
		defer procMu.Unlock()
		nextProc++
		return nextProc - 1
	}
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		cl := &client{id: i, c: c, h: h, pid: i, next: next, seen: map[string]kvEntry{},
			rng: rand.New(rand.NewPCG(seed, uint64(100+i)))}
		wg.Add(1)
		go func() { defer wg.Done(); cl.run(ctx) }()
	}
	return &wg
}

// runNemesis alternates quiet gaps and faults drawn from sched until
// loadCtx ends, counting the faults started; it returns the first error of
// the nemesis. The last fault may still be on: the caller stops it.
func runNemesis(loadCtx context.Context, sched Schedule, nem Nemesis, env *Env, faults *int) error {
	for {
		gap := sched.GapMin + time.Duration(env.Rng.Int64N(int64(sched.GapMax-sched.GapMin)+1))
		fault := sched.FaultMin + time.Duration(env.Rng.Int64N(int64(sched.FaultMax-sched.FaultMin)+1))
		select {
		case <-loadCtx.Done():
			return nil
		case <-time.After(gap):
		}
		*faults++
		if err := nem.Start(loadCtx, env); err != nil {
			return err
		}
		select {
		case <-loadCtx.Done():
		case <-time.After(fault):
		}
		if err := nem.Stop(context.Background(), env); err != nil {
			return err
		}
	}
}

// check heals-waits, makes the final reads and runs every check.
func check(ctx context.Context, c *Cluster, h *History, dir string, r *Report) {
	ops := h.Ops()
	for _, o := range ops {
		switch o.Outcome {
		case Refused:
			continue
		case Unknown:
			r.Unknown++
		}
		if o.Kind == KindAcquire && o.Outcome == OK {
			r.Acquired++
		}
		r.Ops++
	}
	if r.Acquired == 0 {
		// The lock check would pass vacuously.
		r.Other = append(r.Other, "the lock workload acquired the lock not once")
	}
	if err := c.WaitHealthy(ctx, healTimeout); err != nil {
		r.Other = append(r.Other, fmt.Sprintf("no healthy cluster %v after heal: %v", healTimeout, err))
		checkLinearizable(ops, dir, r)
		return
	}
	// Replicas converge after heal; wait until all agree (or time out and
	// report the difference).
	var replicas map[string]map[string]kvEntry
	var sets map[string][]string
	err := testutil.Wait(ctx, healTimeout, func() error {
		replicas, sets = map[string]map[string]kvEntry{}, map[string][]string{}
		for _, n := range c.Nodes {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			kv, err := listKV(rctx, c, n, "stale")
			if err == nil {
				sets[n.Name], err = readSet(rctx, c, n, "stale")
			}
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			replicas[n.Name] = kv
		}
		if d := replicaDiff(replicas, sets); len(d) > 0 {
			return fmt.Errorf("%d differences, first: %s", len(d), d[0])
		}
		return nil
	})
	if err != nil {
		checkReplicas(replicas, sets, r)
		if len(r.Diverged) == 0 {
			r.Other = append(r.Other, "stale reads after heal: "+err.Error())
		}
	}
	// Final consistent reads through the leader join the history, so the
	// linearizability check also covers the state every write left.
	final(ctx, c, h, ops, r)
	ops = h.Ops()
	checkLinearizable(ops, dir, r)
	checkPhantoms(ops, r)
	checkDuplicates(ops, replicas, r)
	checkDurable(ops, replicas, sets, r)
}

func final(ctx context.Context, c *Cluster, h *History, ops []Op, r *Report) {
	leader, err := c.Leader(ctx)
	if err != nil {
		r.Other = append(r.Other, "final reads: "+err.Error())
		return
	}
	keys := map[string]bool{}
	for i := 0; i < registers; i++ {
		keys[registerKey(i)] = true
	}
	for _, o := range ops {
		if o.Kind == KindInsert {
			keys[o.Key] = true
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call := h.now()
	kv, err := listKV(rctx, c, leader, "consistent")
	ret := h.now()
	if err != nil {
		r.Other = append(r.Other, "final consistent read: "+err.Error())
		return
	}
	proc := 0 // the checker's own process, after every client's
	for _, o := range ops {
		proc = max(proc, o.Process+1)
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		e, ok := kv[k]
		o := Op{Process: proc, Node: leader.Name, Kind: KindGet, Key: k, Call: call, Return: ret, Outcome: OK, Found: ok, Final: true}
		if ok {
			o.Read, o.ReadIndex = string(e.Value), e.ModifyIndex
		}
		h.add(o)
	}
	call = h.now()
	set, err := readSet(rctx, c, leader, "consistent")
	ret = h.now()
	if err != nil {
		r.Other = append(r.Other, "final consistent read-set: "+err.Error())
		return
	}
	h.add(Op{Process: proc, Node: leader.Name, Kind: KindReadSet, Key: serviceName, Call: call, Return: ret, Outcome: OK, Set: set, Final: true})
}

// checkLogs reports every error-level line no fault explains.
func checkLogs(c *Cluster, r *Report) {
	for _, n := range c.Nodes {
		lines, err := n.errorLines()
		if err != nil {
			r.Other = append(r.Other, fmt.Sprintf("%s log: %v", n.Name, err))
			continue
		}
		for _, l := range lines {
			var ll logLine
			if json.Unmarshal([]byte(l), &ll) == nil && expectedError(ll) {
				continue
			}
			r.Logs = append(r.Logs, n.Name+": "+truncate(l, 400))
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Summary adds up the trials of one nemesis.
type Summary struct {
	Nemesis                                          string
	Trials, Ops, Illegal, Lost, Duplicated, Diverged int
	Failed                                           int // trials failing any check
}

// Add counts one trial.
func (s *Summary) Add(r *Result) {
	s.Trials++
	s.Ops += r.Report.Ops
	s.Illegal += len(r.Report.Illegal)
	s.Lost += len(r.Report.Lost)
	s.Duplicated += len(r.Report.Duplicated)
	s.Diverged += len(r.Report.Diverged)
	if !r.Report.OK() {
		s.Failed++
	}
}

// String is the line `make chaos` prints per nemesis: the fields,
// then divergent replicas and failed trials (a trial also fails on an
// unexpected error log or an undecidable key, which the first fields do
// not count).
func (s *Summary) String() string {
	return fmt.Sprintf("chaos nemesis=%s trials=%d ops=%d illegal=%d lost=%d duplicated=%d diverged=%d failed=%d",
		s.Nemesis, s.Trials, s.Ops, s.Illegal, s.Lost, s.Duplicated, s.Diverged, s.Failed)
}

// errSkip marks a nemesis that is not built yet (as opposed to one this
// machine cannot run); it adds no text of its own.
var errSkip = errors.New("")

// Usable says why nemesis info cannot run on this machine, or nil.
func Usable(info NemesisInfo) error {
	if info.Skip != "" {
		return fmt.Errorf("%s%w", info.Skip, errSkip)
	}
	if info.Firewall {
		if err := FirewallUsable(); err != nil {
			return err
		}
	}
	return nil
}

// ParseSeed reads CHAOS_SEED-style text.
func ParseSeed(s string) (uint64, error) {
	var v uint64
	_, err := fmt.Sscan(strings.TrimSpace(s), &v)
	return v, err
}
