package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnd/cairn/cluster/stream"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/forwarder"
)

// The fleet benchmark simulates a fleet of client agents against 3 real
// loopback servers: --clients sessions live in this one process, each ONE
// forwarder connection (a client agent's, same package) holding ONE
// subscription stream (forwarder.Subscriptions) with --hot services of
// --services, drawn Zipf-skewed (s=1.1: a few services are hot on almost
// every client). Then --rate check changes per second for --churn: each
// flips the check of a uniformly drawn service (never one changed in the
// last 2 s, so every change is a distinct event) with a catalog register
// on the leader; the check's Output carries the change's sequence number,
// which is how a session tells which change an event shows.
//
//	bench fleet_fanout_p99_ms=<x> clients=<n> changes=<c> deliveries=<d>
//	    from the write's HTTP answer (acknowledged: committed) until a
//	    subscribed session has the event (0 if the event came first), over
//	    every (change, subscribed session) pair; a pair still missing
//	    fleetGrace after the churn fails the run.
//	bench fleet_reads_per_change=<x> clients=<n>
//	    read RPCs the servers answered during the churn
//	    (cairn_rpc_method_requests_total of the read methods, all servers)
//	    per change.
//	bench fleet_server_cpu_pct=<x> idle_cpu_pct=<y> clients=<n>
//	    mean CPU per server (% of one core, /proc/<pid>/stat) during the
//	    churn, and over fleetIdleWindow with every session connected and
//	    subscribed and nothing changing.
//	bench fleet_server_rss_kb_per_client=<x>
//	    growth of the servers' RSS from before the clients connected to
//	    after the idle window, divided by the sessions they gained.
//	bench fleet_reads_per_change_index_watch=<x> clients=<n>
//	    the same churn for --watch-churn against --watch-clients sessions
//	    that keep their hot keys fresh the old way: one blocking read of
//	    the catalog index each, and a re-fetch of every hot key when it
//	    moves.
//	bench catalog_100k_dns_p99_us=<x> base_p99_us=<y>
//	    a fresh cluster and one real client agent: DNS p99 through the
//	    client for a 10-instance service with 100 instances in the catalog
//	    (base), then with --catalog-instances over a tenth as many services;
//	    each the median p99 of 11 rounds of 2,000 queries, measured once
//	    every agent is below 10% of a core (the big registration done).
//
// --phases picks which of fleet, watch and catalog run.
func init() {
	register("fleet", "fleet simulator: N client sessions subscribed over one connection each; fan-out latency, reads per change, server CPU and RSS per client; catalog_100k DNS", runFleet)
}

// fleetOptions are the fleet benchmark's flags (defaults: issue 14).
type fleetOptions struct {
	Clients          int
	Services         int
	Hot              int
	Rate             float64
	Churn            time.Duration
	WatchClients     int
	WatchChurn       time.Duration
	CatalogInstances int
	Phases           string
}

func (f *fleetOptions) flags(fs *flag.FlagSet) {
	fs.IntVar(&f.Clients, "clients", 10000, "fleet: client sessions (one connection and one subscription stream each)")
	fs.IntVar(&f.Services, "services", 1000, "fleet: registered services")
	fs.IntVar(&f.Hot, "hot", 20, "fleet: services each session subscribes to (Zipf-skewed)")
	fs.Float64Var(&f.Rate, "rate", 10, "fleet: check changes per second")
	fs.DurationVar(&f.Churn, "churn", 60*time.Second, "fleet: length of the churn phase")
	fs.IntVar(&f.WatchClients, "watch-clients", 1000, "fleet: sessions of the index-watch comparison")
	fs.DurationVar(&f.WatchChurn, "watch-churn", 20*time.Second, "fleet: churn length of the index-watch comparison")
	fs.IntVar(&f.CatalogInstances, "catalog-instances", 100000, "fleet: instances of the catalog_100k phase (10 per service)")
	fs.StringVar(&f.Phases, "phases", "fleet,watch,catalog", "fleet: phases to run (comma-separated: fleet, watch, catalog)")
}

// Bounds of the flags: every load loop is bounded in count and time.
const (
	maxFleetClients     = 50000
	maxFleetServices    = 100000
	maxFleetRate        = 1000
	maxFleetChurn       = 10 * time.Minute
	maxCatalogInstances = 1000000
)

func (f *fleetOptions) validate() error {
	switch {
	case f.Clients < 1 || f.Clients > maxFleetClients:
		return fmt.Errorf("--clients must be in [1, %d]", maxFleetClients)
	case f.WatchClients < 1 || f.WatchClients > maxFleetClients:
		return fmt.Errorf("--watch-clients must be in [1, %d]", maxFleetClients)
	case f.Services < 1 || f.Services > maxFleetServices:
		return fmt.Errorf("--services must be in [1, %d]", maxFleetServices)
	case f.Hot < 1 || f.Hot > f.Services:
		return fmt.Errorf("--hot must be in [1, --services]")
	case f.Rate <= 0 || f.Rate > maxFleetRate:
		return fmt.Errorf("--rate must be in (0, %d]", maxFleetRate)
	case f.Churn <= 0 || f.Churn > maxFleetChurn || f.WatchChurn <= 0 || f.WatchChurn > maxFleetChurn:
		return fmt.Errorf("--churn and --watch-churn must be in (0, %v]", maxFleetChurn)
	case f.CatalogInstances < 1000 || f.CatalogInstances > maxCatalogInstances:
		return fmt.Errorf("--catalog-instances must be in [1000, %d]", maxCatalogInstances)
	}
	for _, p := range strings.Split(f.Phases, ",") {
		switch p {
		case "fleet", "watch", "catalog":
		default:
			return fmt.Errorf("--phases: unknown phase %q (fleet, watch, catalog)", p)
		}
	}
	return nil
}

func (f *fleetOptions) runs(phase string) bool {
	return slices.Contains(strings.Split(f.Phases, ","), phase)
}

const (
	// fleetZipfS skews the hot sets: with s=1.1 over 1,000 services the
	// top service is in nearly every session's 20, the median one in few.
	fleetZipfS = 1.1
	// fleetNoRepeat: a service changed within this long is not drawn
	// again, so each change is its own event on every session.
	fleetNoRepeat = 2 * time.Second
	// fleetGrace bounds the wait for the last deliveries after the churn.
	fleetGrace = 30 * time.Second
	// fleetIdleWindow is how long idle CPU is measured.
	fleetIdleWindow = 10 * time.Second
	// fleetConnectConcurrency sessions are started at a time: each waits
	// until its subscription stream is up, so servers see a steady
	// stream of new connections, not 10,000 SYNs at once.
	fleetConnectConcurrency = 64
	// fleetConnectTimeout bounds one session's start.
	fleetConnectTimeout = 60 * time.Second
	// fleetWriters register the services concurrently.
	fleetWriters = 32
	// fleetNoFile is the open-file limit the bench asks for (it and the
	// servers it starts inherit it): a server's total connection cap is
	// a share of it (cluster/connlimit: 12,288 at 65,536).
	fleetNoFile = 65536
)

func runFleet(ctx context.Context, o *Options) error {
	f := &o.Fleet
	if err := raiseNoFile(max(fleetNoFile, uint64(4*max(f.Clients, f.WatchClients)+8192))); err != nil {
		return err
	}
	if f.runs("fleet") || f.runs("watch") {
		if err := runFleetPhases(ctx, o); err != nil {
			return err
		}
	}
	if f.runs("catalog") {
		return runCatalog(ctx, o)
	}
	return nil
}

// raiseNoFile sets RLIMIT_NOFILE to at least want (raising the hard limit
// too when allowed, as root); children started afterwards inherit it.
func raiseNoFile(want uint64) error {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if r.Cur >= want {
		return nil
	}
	n := syscall.Rlimit{Cur: want, Max: max(r.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		// Not allowed to raise the hard limit: take what it allows.
		n = syscall.Rlimit{Cur: r.Max, Max: r.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
		logf("open-file limit %d (hard limit; wanted %d)", r.Max, want)
		return nil
	}
	logf("open-file limit raised to %d", want)
	return nil
}

// startFleetServers starts 3 servers with default limits: each simulated
// client dials from its own loopback address (fleetSourceAddr), as client
// agents do from their own IPs, so limits.rpc_max_conns_per_client (100)
// holds as in production.
func startFleetServers(ctx context.Context, o *Options) (*cluster, *agentProc, error) {
	c, err := startServers(ctx, o.Bin, 3, o.ProfileDir != "", o.KeepLogs, "--log-level", "warn")
	if err != nil {
		return nil, nil, err
	}
	leader, err := c.leader(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, leader, nil
}

// fleetSourceAddr is session i's own source address, 127.1.0.1 up
// (clear of 127.0.0.x, where tests and the chaos harness live).
func fleetSourceAddr(i int) net.Addr {
	n := i + 1
	return &net.TCPAddr{IP: net.IPv4(127, byte(1+n>>16), byte(n>>8), byte(n))}
}

func fleetService(i int) string { return fmt.Sprintf("fleet-%d", i) }

// registerFleetServices registers services 0..n-1, one instance each on
// its own node with one passing check, fleetWriters at a time.
func registerFleetServices(ctx context.Context, leader *agentProc, n int) error {
	var next atomic.Int64
	errs := make(chan error, fleetWriters)
	var wg sync.WaitGroup
	for range fleetWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := putFleetCheck(ctx, leader, i, "passing", "seq=0"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// putFleetCheck registers service i's instance with its check in status
// and output.
func putFleetCheck(ctx context.Context, leader *agentProc, i int, status, output string) error {
	svc := fleetService(i)
	node := fmt.Sprintf("fleet-n%d", i)
	body := fmt.Sprintf(`{"Node":%q,"Address":"10.9.%d.%d","Service":{"Service":%q,"Port":80},"Check":{"Node":%q,"CheckID":"svc:%s","Name":"svc","Status":%q,"Output":%q,"ServiceID":%q}}`,
		node, i/250, i%250+1, svc, node, svc, status, output, svc)
	return rpcBenchPut(ctx, "http://"+leader.httpAddr()+"/v1/catalog/register", body)
}

// hotSets draws each session's hot services: Zipf-skewed, distinct.
func hotSets(r *rand.Rand, sessions, services, hot int) [][]int {
	z := rand.NewZipf(r, fleetZipfS, 1, uint64(services-1))
	sets := make([][]int, sessions)
	for i := range sets {
		seen := make(map[int]bool, hot)
		set := make([]int, 0, hot)
		for tries := 0; len(set) < hot && tries < 100*hot; tries++ {
			if s := int(z.Uint64()); !seen[s] {
				seen[s] = true
				set = append(set, s)
			}
		}
		for s := 0; len(set) < hot; s++ { // the tail, should Zipf not get there
			if !seen[s] {
				seen[s] = true
				set = append(set, s)
			}
		}
		sets[i] = set
	}
	return sets
}

// fanout tracks every change and when each subscribed session saw it.
type fanout struct {
	subscribers []int // per service: sessions holding it hot
	base        int   // seqs of earlier phases; this one's start after it

	mu      sync.Mutex
	changes []*fleetChange // change seq base+n is changes[n-1]
	bySvc   map[int][]int  // service -> its change seqs, ascending
}

type fleetChange struct {
	svc      int
	acked    time.Time // zero until the write's answer came
	arrivals []arrival
}

// arrival is one session having a change: when, and through which server.
type arrival struct {
	at  time.Time
	srv string
}

// newFanout tracks the changes of one phase; base is the last change seq
// of earlier phases on the same servers (checks still show them).
func newFanout(services int, sets [][]int, base int) *fanout {
	fo := &fanout{subscribers: make([]int, services), base: base, bySvc: make(map[int][]int)}
	for _, set := range sets {
		for _, s := range set {
			fo.subscribers[s]++
		}
	}
	return fo
}

// begin records change seq to svc before its write is sent.
func (fo *fanout) begin(svc int) int {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	fo.changes = append(fo.changes, &fleetChange{svc: svc})
	seq := fo.base + len(fo.changes)
	fo.bySvc[svc] = append(fo.bySvc[svc], seq)
	return seq
}

func (fo *fanout) acked(seq int, at time.Time) {
	fo.mu.Lock()
	fo.changes[seq-fo.base-1].acked = at
	fo.mu.Unlock()
}

// saw records that a session holding svc, whose last seen change of svc
// was last, now sees change seq through server srv: every change of svc in
// (last, seq] is delivered (a later result includes the earlier change).
func (fo *fanout) saw(svc, last, seq int, at time.Time, srv string) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	for _, n := range fo.bySvc[svc] {
		if n > last && n <= seq {
			c := fo.changes[n-fo.base-1]
			c.arrivals = append(c.arrivals, arrival{at, srv})
		}
	}
}

// outcome returns the sorted fan-out latencies, the deliveries, and the
// (change, subscriber) pairs still missing.
func (fo *fanout) outcome() (lat []time.Duration, deliveries, missing int) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	for _, c := range fo.changes {
		deliveries += len(c.arrivals)
		missing += max(0, fo.subscribers[c.svc]-len(c.arrivals))
		for _, a := range c.arrivals {
			lat = append(lat, max(0, a.at.Sub(c.acked)))
		}
	}
	slices.Sort(lat)
	return lat, deliveries, missing
}

// worst logs the changes whose slowest delivery was the latest, with
// their subscriber counts and write latency (where fan-out time goes).
func (fo *fanout) worst(n int) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	type w struct {
		seq, svc, subs int
		slowest        time.Duration
	}
	var all []w
	for i, c := range fo.changes {
		var slowest time.Duration
		for _, a := range c.arrivals {
			slowest = max(slowest, a.at.Sub(c.acked))
		}
		all = append(all, w{fo.base + i + 1, c.svc, fo.subscribers[c.svc], slowest})
	}
	slices.SortFunc(all, func(a, b w) int { return int(b.slowest - a.slowest) })
	for _, x := range all[:min(n, len(all))] {
		logf("slow change seq=%d service=%d subscribers=%d: last delivery %v after the ack", x.seq, x.svc, x.subs, x.slowest.Round(time.Millisecond))
	}
}

// perServer logs the fan-out latency of the sessions of each server: a
// follower that applies late delays only its own sessions.
func (fo *fanout) perServer() {
	fo.mu.Lock()
	by := map[string][]time.Duration{}
	for _, c := range fo.changes {
		for _, a := range c.arrivals {
			by[a.srv] = append(by[a.srv], max(0, a.at.Sub(c.acked)))
		}
	}
	fo.mu.Unlock()
	for srv, lat := range by {
		slices.Sort(lat)
		logf("fan-out through %s: %d deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms", srv, len(lat), msPct(lat, 0.5), msPct(lat, 0.99), msPct(lat, 1))
	}
}

// last is the seq of the phase's last change.
func (fo *fanout) last() int {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	return fo.base + len(fo.changes)
}

// complete reports whether every change has reached all its subscribers.
func (fo *fanout) complete() bool {
	_, _, missing := fo.outcome()
	return missing == 0
}

// changeSeq reads the change sequence number from the instance's check
// output ("seq=N"); -1 if absent.
func changeSeq(nodes []structs.CheckServiceNode) int {
	for _, n := range nodes {
		for _, c := range n.Checks {
			var seq int
			if _, err := fmt.Sscanf(c.Output, "seq=%d", &seq); err == nil {
				return seq
			}
		}
	}
	return -1
}

// churn makes rate changes per second for d: change k is due at k/rate
// after the start and made then, or at once when the loop runs late, until
// rate*d are made or d+fleetGrace passed. Each flips the check of a
// service drawn uniformly but not changed within fleetNoRepeat. Writes run
// concurrently (at most fleetWriters in flight) so a slow commit does not
// slow the rate; it waits for all of them and returns how many it made.
func churn(ctx context.Context, leader *agentProc, fo *fanout, services int, rate float64, d time.Duration, r *rand.Rand) (int, error) {
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	end := start.Add(d + fleetGrace)
	lastChanged := map[int]time.Time{}
	flips := map[int]int{}
	sem := make(chan struct{}, fleetWriters)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var lastErr atomic.Value
	var mu sync.Mutex
	writes := make([]time.Duration, 0, total)
	made := 0
	for made < total && time.Now().Before(end) {
		if !sleepCtx(ctx, time.Until(start.Add(time.Duration(made)*interval))) {
			break
		}
		svc := r.Intn(services)
		for tries := 0; tries < 100 && time.Since(lastChanged[svc]) < fleetNoRepeat; tries++ {
			svc = r.Intn(services)
		}
		lastChanged[svc] = time.Now()
		flips[svc]++
		status := "passing"
		if flips[svc]%2 == 1 {
			status = "critical"
		}
		seq := fo.begin(svc)
		made++
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			if err := putFleetCheck(ctx, leader, svc, status, fmt.Sprintf("seq=%d", seq)); err != nil {
				failed.Add(1)
				lastErr.Store(err)
				return
			}
			now := time.Now()
			fo.acked(seq, now)
			mu.Lock()
			writes = append(writes, now.Sub(t0))
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(writes)
	logf("churn: %d changes in %v; write acknowledged p50 %.1f ms, p99 %.1f ms", made, time.Since(start).Round(time.Millisecond), msPct(writes, 0.5), msPct(writes, 0.99))
	if err := ctx.Err(); err != nil {
		return made, err
	}
	if n := failed.Load(); n > 0 {
		return made, fmt.Errorf("%d of %d changes failed: %v", n, made, lastErr.Load())
	}
	return made, nil
}

// fleetSession is one simulated client agent: a forwarder (ONE
// connection) and its subscription stream.
type fleetSession struct {
	fwd  *forwarder.Forwarder
	subs *forwarder.Subscriptions
	hot  []int
	last []int // per hot slot: last change seq seen (-1: no snapshot yet)
	// snapshots counts hot slots with a first result: the session is
	// ready when it reaches len(hot).
	snapshots atomic.Int64
	stop      func()
}

// startFleetSession connects one session to addrs and subscribes it to
// its hot services; events go to fo.
func startFleetSession(ctx context.Context, src net.Addr, addrs []string, hot []int, fo *fanout) (*fleetSession, error) {
	s := &fleetSession{hot: hot, last: make([]int, len(hot))}
	for i := range s.last {
		s.last[i] = -1
	}
	cfg := forwarder.DefaultConfig()
	// The fleet stays where it connected: no rebalancing during the run.
	cfg.RebalanceInterval = time.Hour
	cfg.LocalAddr = src
	s.fwd = forwarder.New(cfg, nil, nil)
	s.fwd.SetServers(addrs)
	subs, err := s.fwd.NewSubscriptions(forwarder.SubscriptionsConfig{
		Deliver: s.deliver(fo),
	})
	if err != nil {
		s.fwd.Close()
		return nil, err
	}
	s.subs = subs
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.fwd.Run(runCtx) }()
	go func() { defer wg.Done(); s.subs.Run(runCtx) }()
	s.stop = func() { cancel(); s.fwd.Close(); wg.Wait() }
	for slot, svc := range hot {
		id := subs.Subscribe(stream.Request{Topic: stream.TopicServiceHealth, Key: fleetService(svc)})
		if id != uint64(slot+1) {
			s.stop()
			return nil, fmt.Errorf("subscription ids: got %d for slot %d, want %d", id, slot, slot+1)
		}
	}
	return s, nil
}

// deliver handles the session's events (from its one Run goroutine).
func (s *fleetSession) deliver(fo *fanout) func(stream.Event) {
	return func(ev stream.Event) {
		slot := int(ev.ID) - 1
		if slot < 0 || slot >= len(s.hot) {
			return
		}
		switch ev.Kind {
		case stream.KindSnapshot, stream.KindUpdate:
		default:
			return
		}
		seq := changeSeq(ev.Health)
		if seq < 0 {
			return
		}
		if s.last[slot] < 0 {
			s.last[slot] = seq
			s.snapshots.Add(1)
			return
		}
		if seq > s.last[slot] {
			fo.saw(s.hot[slot], s.last[slot], seq, time.Now(), s.fwd.Server())
			s.last[slot] = seq
		}
	}
}

func (s *fleetSession) ready() bool { return int(s.snapshots.Load()) == len(s.hot) }

// startFleet starts one session per hot set, fleetConnectConcurrency at a
// time, each waited for until its stream is up and every subscription
// has its snapshot. On error the sessions started are stopped.
func startFleet(ctx context.Context, addrs []string, sets [][]int, fo *fanout, start func(ctx context.Context, src net.Addr, addrs []string, hot []int, fo *fanout) (fleetMember, error)) ([]fleetMember, error) {
	members := make([]fleetMember, len(sets))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, fleetConnectConcurrency)
	t0 := time.Now()
	for range fleetConnectConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sets) || ctx.Err() != nil {
					return
				}
				m, err := start(ctx, fleetSourceAddr(i), addrs, sets[i], fo)
				if err == nil {
					members[i] = m
					err = waitReady(ctx, m)
				}
				if err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
				if n := i + 1; n%1000 == 0 {
					logf("%d sessions connected and subscribed (%.0fs)", n, time.Since(t0).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	err := errors.Join(<-errs, ctx.Err())
	if err != nil {
		stopFleet(members)
		return nil, err
	}
	return members, nil
}

// fleetMember is a simulated client of either mode.
type fleetMember interface {
	ready() bool
	close()
}

func (s *fleetSession) close() { s.stop() }

func waitReady(ctx context.Context, m fleetMember) error {
	deadline := time.Now().Add(fleetConnectTimeout)
	for !m.ready() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not connected and subscribed within %v", fleetConnectTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// stopFleet stops every member, 256 at a time.
func stopFleet(members []fleetMember) {
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, m := range members {
		if m == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer wg.Done(); m.close(); <-sem }()
	}
	wg.Wait()
}
