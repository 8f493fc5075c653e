package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/cairnd/cairn/resolver"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// fakeTier is a server tier holding one service; blocking queries wait
// until the index moves or the tier goes down.
type fakeTier struct {
	mu     sync.Mutex
	index  uint64
	status string
	down   bool
	moved  chan struct{}
	calls  atomic.Int64
	// gate, when set, holds every fetch of "web" until it is closed.
	gate chan struct{}
	// blocked counts the blocking queries waiting for the index to move.
	blocked atomic.Int64
}

func newFakeTier() *fakeTier {
	return &fakeTier{index: 10, status: structs.HealthPassing, moved: make(chan struct{})}
}

func (t *fakeTier) set(status string) {
	t.mu.Lock()
	t.status = status
	t.index++
	close(t.moved)
	t.moved = make(chan struct{})
	t.mu.Unlock()
}

// setDown makes every request fail, blocking queries in wait included.
func (t *fakeTier) setDown() {
	t.mu.Lock()
	t.down = true
	close(t.moved)
	t.moved = make(chan struct{})
	t.mu.Unlock()
}

func (t *fakeTier) rpc(ctx context.Context, method string, args, reply any) error {
	t.calls.Add(1)
	req, ok := args.(*structs.ServiceSpecificRequest)
	if !ok {
		return errors.New("unsupported")
	}
	if t.gate != nil && req.ServiceName == "web" {
		select {
		case <-t.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		t.mu.Lock()
		down, idx, st, moved := t.down, t.index, t.status, t.moved
		t.mu.Unlock()
		if down {
			return structs.ErrNoServers
		}
		if req.MinQueryIndex == 0 || idx > req.MinQueryIndex {
			out := reply.(*structs.IndexedCheckServiceNodes)
			out.Index = idx
			if req.ServiceName == "web" {
				for i, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
					s := st
					if i > 0 {
						s = structs.HealthPassing
					}
					out.Nodes = append(out.Nodes, structs.CheckServiceNode{
						Node:    &structs.Node{Node: "n" + a, Address: a, Datacenter: "dc1"},
						Service: &structs.NodeService{ID: "web", Service: "web", Port: 80},
						Checks:  []*structs.HealthCheck{{Status: s}},
					})
				}
			}
			return nil
		}
		t.blocked.Add(1)
		select {
		case <-moved:
		case <-ctx.Done():
			t.blocked.Add(-1)
			return ctx.Err()
		}
		t.blocked.Add(-1)
	}
}

func newTestCatalog(t *testing.T, tier *fakeTier) *Catalog {
	cfg := DefaultConfig()
	c, err := New(cfg, tier.rpc, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSingleflight(t *testing.T) {
	tier := newFakeTier()
	tier.gate = make(chan struct{}) // the fetch waits until all have asked
	cfg := DefaultConfig()
	cfg.FetchTimeout = time.Minute // the gate, not the timeout, ends the fetch
	c, err := New(cfg, tier.rpc, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	const lookups = 1000
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts, err := c.ServiceNodes(context.Background(), "", "web", "", false, nil)
			if err != nil || len(insts) != 3 {
				bad.Add(1)
			}
		}()
	}
	testutil.Eventually(t, 5*time.Second, "every other lookup to wait for the first one's fetch", func() error {
		if n := counterValue(t, c.metrics.coalesced); n != lookups-1 {
			return fmt.Errorf("%v coalesced", n)
		}
		return nil
	})
	close(tier.gate)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d lookups failed", bad.Load())
	}
	// The waiters' channel went with the fill: no entry keeps one.
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n := len(s.waits)
		s.mu.RUnlock()
		if n != 0 {
			t.Fatalf("shard %d still holds %d wait channels after the fill", i, n)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the index watch to block", func() error {
		if tier.blocked.Load() != 1 {
			return errors.New("not blocked")
		}
		return nil
	})
	// One fetch plus the index watch's first query and its blocking one.
	if n := tier.calls.Load(); n != 3 {
		t.Fatalf("%d server calls for %d identical misses", n, lookups)
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestPushRefreshAndStale(t *testing.T) {
	tier := newFakeTier()
	c := newTestCatalog(t, tier)
	ctx := context.Background()
	status := func() string {
		insts, err := c.ServiceNodes(ctx, "", "web", "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			if in.Node.Address == "10.0.0.1" {
				return in.Status
			}
		}
		return "gone"
	}
	if s := status(); s != resolver.StatusPassing {
		t.Fatalf("status %s", s)
	}
	calls := tier.calls.Load()
	tier.set(structs.HealthCritical)
	testutil.Eventually(t, time.Second, "the refresh to be pushed", func() error {
		if s := status(); s != resolver.StatusCritical {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
	// The index watch's answer, the refresh, the next blocking query.
	if n := tier.calls.Load() - calls; n > 3 {
		t.Fatalf("%d calls: polling, not push", n)
	}
	tier.setDown()
	testutil.Eventually(t, 5*time.Second, "the outage to be noticed", func() error {
		if !c.outage.Load() {
			return errors.New("no outage yet")
		}
		return nil
	})
	if s := status(); s != resolver.StatusCritical {
		t.Fatalf("stale status %s", s)
	}
	start := time.Now()
	if _, err := c.ServiceNodes(ctx, "", "db", "", false, nil); err == nil {
		t.Fatal("uncached miss during outage succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("miss during outage took %s", d)
	}
}

// startResolver serves the DNS port from c, as a client agent does.
func startResolver(t testing.TB, c *Catalog, readers int) net.Addr {
	t.Helper()
	rc := resolver.DefaultConfig()
	rc.Addr = "127.0.0.1:0"
	rc.UDPReaders = readers
	res, err := resolver.New(rc, c, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	udp, _ := res.Addr()
	return udp
}

// TestWireParity: answers from packed bytes (the resolver's wire-level
// path over this cache) equal the full path's, and a change of an entry
// drops them at once.
func TestWireParity(t *testing.T) {
	tier := newFakeTier()
	c := newTestCatalog(t, tier)
	udp := startResolver(t, c, 2)
	for _, tc := range []struct {
		name string
		qt   uint16
		edns bool
	}{
		{"web.service.consul.", dns.TypeA, false},
		{"WeB.Service.consul.", dns.TypeA, true},
		{"web.service.dc1.consul.", dns.TypeSRV, true},
		{"web.service.consul.", dns.TypeSRV, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qt)
		if tc.edns {
			m.SetEdns0(1232, false)
		}
		var first []byte
		for i := 0; i < packings+2; i++ {
			got := exchangeRaw(t, udp.String(), m)
			if i == 0 {
				first = got
				continue
			}
			if canon(t, got) != canon(t, first) {
				t.Fatalf("%s %d: query %d differs:\n%s\nvs\n%s", tc.name, tc.qt, i, canon(t, got), canon(t, first))
			}
		}
	}
	if c.wireHits() == 0 {
		t.Fatal("no wire-level hits")
	}
	// Different case after the entry exists: same answer, case kept.
	m := new(dns.Msg)
	m.SetQuestion("WEB.service.consul.", dns.TypeA)
	r := new(dns.Msg)
	if err := r.Unpack(exchangeRaw(t, udp.String(), m)); err != nil {
		t.Fatal(err)
	}
	if r.Question[0].Name != "WEB.service.consul." || len(r.Answer) != 3 || r.Id != m.Id {
		t.Fatalf("bad answer %v", r)
	}
	// A check turning critical drops the packed answers at once.
	tier.set(structs.HealthCritical)
	testutil.Eventually(t, time.Second, "the critical instance to leave the answer", func() error {
		r := new(dns.Msg)
		if err := r.Unpack(exchangeRaw(t, udp.String(), m)); err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 2 {
			return fmt.Errorf("%d answers", len(r.Answer))
		}
		return nil
	})
}

func exchangeRaw(t testing.TB, addr string, m *dns.Msg) []byte {
	t.Helper()
	m.Id = dns.Id()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != b[0] || buf[1] != b[1] {
		t.Fatal("id not echoed")
	}
	return buf[:n]
}

// canon renders a response with ID zeroed and each section sorted, so two
// shuffles of one answer compare equal; sizes must match exactly.
func canon(t testing.TB, b []byte) string {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	m.Id = 0
	s := m.MsgHdr.String() + m.Question[0].String()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var rrs []string
		for _, rr := range sec {
			rrs = append(rrs, rr.String())
		}
		sort.Strings(rrs)
		for _, r := range rrs {
			s += "\n" + r
		}
	}
	return s + "\nlen=" + string(rune('0'+len(b)%10)) + string(rune('0'+len(b)/10%10)) + string(rune('0'+len(b)/100%10))
}

// TestIndexWatch: one blocking query covers every key, however many; a
// move of the catalog index refreshes the hot keys with bounded
// concurrency and leaves unchanged answers' versions alone.
func TestIndexWatch(t *testing.T) {
	srv := newIndexedTier(5)
	c, err := New(DefaultConfig(), srv.rpc, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	status := func(name string) string {
		t.Helper()
		insts, err := c.ServiceNodes(ctx, "", name, "", false, nil)
		if err != nil || len(insts) != 1 {
			t.Fatalf("%s: %v %v", name, insts, err)
		}
		return insts[0].Status
	}
	const keys = 500
	for i := range keys {
		status(fmt.Sprintf("svc-%d", i))
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, what, func() error {
			if !ok() {
				return errors.New("not yet")
			}
			return nil
		})
	}
	waitFor("the index watch to block", func() bool { return srv.blocking.Load() == 1 })
	if f := srv.fetches.Load(); f != keys {
		t.Fatalf("%d fetches for %d keys", f, keys)
	}
	ver1 := entryVersion(c, "svc-1")

	for i := range keys {
		status(fmt.Sprintf("svc-%d", i)) // every key hot for the round
	}
	release := make(chan struct{})
	srv.move("svc-7", release)
	waitFor("every refresh worker to be fetching", func() bool { return srv.inflight.Load() == refreshWorkers })
	close(release)
	waitFor("svc-7 to turn critical", func() bool { return status("svc-7") == resolver.StatusCritical })
	waitFor("the refresh round", func() bool { return srv.fetches.Load() == 2*keys && srv.blocking.Load() == 1 })
	if p := srv.peak.Load(); p != refreshWorkers {
		t.Fatalf("%d concurrent refresh fetches, want %d (refreshWorkers)", p, refreshWorkers)
	}
	if ver2 := entryVersion(c, "svc-1"); ver1 != ver2 {
		t.Fatalf("unchanged svc-1 moved version %d -> %d", ver1, ver2)
	}
}

// entryVersion is the version of the cached entry of service name in dc1.
func entryVersion(c *Catalog, name string) uint64 {
	return c.entryOf(key{dc: "dc1", kind: kindService, name: name}).version.Load()
}

// indexedTier is a server tier for TestIndexWatch: every service has one
// passing instance (critical for the one named by move), and blocking
// queries wait until the index moves. It counts fetches, blocked queries
// and concurrent fetches.
type indexedTier struct {
	mu       sync.Mutex
	index    uint64
	critical string
	moved    chan struct{}
	// gate, once set, holds the refresh round's fetches until closed, so
	// the workers' concurrency shows.
	gate                              chan struct{}
	fetches, blocking, inflight, peak atomic.Int64
}

func newIndexedTier(index uint64) *indexedTier {
	return &indexedTier{index: index, moved: make(chan struct{})}
}

// move bumps the index, waking blocked queries, with critical now the
// critical service and gate holding the fetches.
func (s *indexedTier) move(critical string, gate chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
	s.critical = critical
	s.gate = gate
	close(s.moved)
	s.moved = make(chan struct{})
}

func (s *indexedTier) rpc(ctx context.Context, method string, args, reply any) error {
	req := args.(*structs.ServiceSpecificRequest)
	out := reply.(*structs.IndexedCheckServiceNodes)
	for {
		s.mu.Lock()
		idx, crit, ch, g := s.index, s.critical, s.moved, s.gate
		s.mu.Unlock()
		if req.MinQueryIndex == 0 || idx > req.MinQueryIndex {
			out.Index = idx
			if req.ServiceName == indexProbe {
				return nil
			}
			return s.fetch(ctx, req.ServiceName, crit, g, out)
		}
		s.blocking.Add(1)
		select {
		case <-ch:
			s.blocking.Add(-1)
		case <-ctx.Done():
			s.blocking.Add(-1)
			return ctx.Err()
		}
	}
}

// fetch answers one read of service name, waiting for gate if set.
func (s *indexedTier) fetch(ctx context.Context, name, crit string, gate chan struct{}, out *structs.IndexedCheckServiceNodes) error {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.fetches.Add(1)
	st := structs.HealthPassing
	if name == crit {
		st = structs.HealthCritical
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	out.Nodes = []structs.CheckServiceNode{{
		Node:    &structs.Node{Node: "n1", Address: "10.0.0.1", Datacenter: "dc1"},
		Service: &structs.NodeService{ID: name, Service: name, Port: 80},
		Checks:  []*structs.HealthCheck{{Status: st}},
	}}
	return nil
}
