package cache

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/stream"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"go.uber.org/zap"
)

// fakeSubs records subscriptions as forwarder.Subscriptions would send them.
type fakeSubs struct {
	mu     sync.Mutex
	next   uint64
	live   map[uint64]stream.Request
	unsubs []uint64
}

func (f *fakeSubs) SubscribeFrom(src stream.Source, index uint64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	r := src.Subscription()
	r.ID, r.Index = f.next, index
	if f.live == nil {
		f.live = make(map[uint64]stream.Request)
	}
	f.live[r.ID] = r
	return r.ID
}

func (f *fakeSubs) Unsubscribe(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, id)
	f.unsubs = append(f.unsubs, id)
}

func (f *fakeSubs) only(t *testing.T) stream.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.live) != 1 {
		t.Fatalf("%d live subscriptions, want 1: %v", len(f.live), f.live)
	}
	for _, r := range f.live {
		return r
	}
	return stream.Request{}
}

func newSubCatalog(t *testing.T, tier *fakeTier, subs Subscriber, mod func(*Config)) *Catalog {
	cfg := DefaultConfig()
	cfg.Subscriber = subs
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, tier.rpc, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *Catalog) entryOf(k key) *entry {
	s, h := c.locate(&k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.find(h, &k)
}

func webAddrs(t *testing.T, c *Catalog) []string {
	t.Helper()
	insts, err := c.ServiceNodes(context.Background(), "", "web", "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range insts {
		if in.Status == structs.HealthPassing {
			out = append(out, in.Node.Address)
		}
	}
	slices.Sort(out)
	return out
}

func webEvent(id, idx uint64, kind stream.Kind, addrs ...string) stream.Event {
	ev := stream.Event{ID: id, Kind: kind, Index: idx}
	for _, a := range addrs {
		ev.Health = append(ev.Health, structs.CheckServiceNode{
			Node:    &structs.Node{Node: "n" + a, Address: a, Datacenter: "dc1"},
			Service: &structs.NodeService{ID: "web", Service: "web", Port: 80},
			Checks:  []*structs.HealthCheck{{Status: structs.HealthPassing}},
		})
	}
	return ev
}

func TestSubscriptionEventsReplaceEntriesWithoutReads(t *testing.T) {
	tier := newFakeTier()
	subs := &fakeSubs{}
	c := newSubCatalog(t, tier, subs, nil)
	if got := webAddrs(t, c); len(got) != 3 {
		t.Fatalf("first answer %v", got)
	}
	req := subs.only(t)
	want := stream.Request{ID: req.ID, Topic: stream.TopicServiceHealth, Key: "web", PassingOnly: true, Index: 10}
	if req != want {
		t.Fatalf("subscribed %+v, want %+v (from the fetched answer's index)", req, want)
	}
	calls := tier.calls.Load()
	e := c.entryOf(key{dc: "dc1", kind: kindService, name: "web", passing: true})
	ver := e.version.Load()

	c.Deliver(stream.Event{ID: req.ID, Kind: stream.KindResumed, Index: 10})
	if e.version.Load() != ver {
		t.Fatal("resumed moved the version")
	}
	c.Deliver(webEvent(req.ID, 11, stream.KindUpdate, "10.0.0.2", "10.0.0.3"))
	if got := webAddrs(t, c); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.3"}) {
		t.Fatalf("after update: %v", got)
	}
	ver2 := e.version.Load()
	if ver2 == ver {
		t.Fatal("update kept the version: packed answers would survive")
	}
	// The same answer again (a change the filter hides) keeps packed answers.
	c.Deliver(webEvent(req.ID, 12, stream.KindUpdate, "10.0.0.2", "10.0.0.3"))
	if e.version.Load() != ver2 {
		t.Fatal("identical update moved the version")
	}
	// An older update (reordered) is ignored; a snapshot replaces.
	c.Deliver(webEvent(req.ID, 9, stream.KindUpdate, "10.0.0.9"))
	c.Deliver(webEvent(req.ID, 13, stream.KindSnapshot, "10.0.0.1"))
	if got := webAddrs(t, c); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("after snapshot: %v", got)
	}
	// Events for unknown IDs are dropped.
	c.Deliver(webEvent(req.ID+100, 20, stream.KindSnapshot))
	if n := tier.calls.Load(); n != calls {
		t.Fatalf("%d read RPCs after events, want none", n-calls)
	}
}

func TestIdleKeysAreUnsubscribed(t *testing.T) {
	tier := newFakeTier()
	subs := &fakeSubs{}
	c := newSubCatalog(t, tier, subs, func(cfg *Config) { cfg.IdleTimeout = 200 * time.Millisecond })
	webAddrs(t, c)
	id := subs.only(t).ID
	testutil.Eventually(t, 5*time.Second, "idle key unsubscribed", func() error {
		subs.mu.Lock()
		defer subs.mu.Unlock()
		if !slices.Equal(subs.unsubs, []uint64{id}) || len(subs.live) != 0 {
			return errors.New("still subscribed")
		}
		return nil
	})
	// A late event for it changes nothing and a new ask fetches again.
	c.Deliver(webEvent(id, 50, stream.KindUpdate))
	before := tier.calls.Load()
	if got := webAddrs(t, c); len(got) != 3 {
		t.Fatalf("answer after idle drop %v", got)
	}
	if tier.calls.Load() != before+1 {
		t.Fatal("idle-dropped key not fetched again")
	}
}

func TestRefusedSubscriptionFallsBackToFetch(t *testing.T) {
	tier := newFakeTier()
	subs := &fakeSubs{}
	c := newSubCatalog(t, tier, subs, nil)
	webAddrs(t, c)
	id := subs.only(t).ID
	c.Deliver(stream.Event{ID: id, Kind: stream.KindError, Error: "too many"})
	if e := c.entryOf(key{dc: "dc1", kind: kindService, name: "web", passing: true}); e != nil {
		t.Fatal("refused entry kept: it would never be refreshed")
	}
	before := tier.calls.Load()
	webAddrs(t, c)
	if tier.calls.Load() != before+1 {
		t.Fatal("refused key not fetched again")
	}
}

func TestIndexWatchModeStaysSelectable(t *testing.T) {
	tier := newFakeTier()
	subs := &fakeSubs{}
	c := newSubCatalog(t, tier, subs, func(cfg *Config) { cfg.Refresh = RefreshIndexWatch })
	webAddrs(t, c)
	if len(subs.live) != 0 {
		t.Fatalf("index-watch mode subscribed: %v", subs.live)
	}
	tier.set(structs.HealthCritical)
	testutil.Eventually(t, 5*time.Second, "index watch refetched web", func() error {
		if got := webAddrs(t, c); len(got) != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	bad := DefaultConfig()
	bad.Refresh = 7
	if err := bad.Validate(); err == nil {
		t.Fatal("unknown refresh mode accepted")
	}
}

func TestUnsupportedServersFallBackToIndexWatch(t *testing.T) {
	tier := newFakeTier()
	subs := &fakeSubs{}
	c := newSubCatalog(t, tier, subs, nil)
	webAddrs(t, c)
	c.Unsupported(errors.New("rpc: unknown method"))
	c.Unsupported(errors.New("again")) // once only
	tier.set(structs.HealthCritical)
	testutil.Eventually(t, 5*time.Second, "index watch refetched web", func() error {
		if got := webAddrs(t, c); len(got) != 2 {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestEntrySubscription: what an entry subscribes to comes from its key
// alone (the forwarder asks again on every re-send, keeping no copy).
func TestEntrySubscription(t *testing.T) {
	for _, tc := range []struct {
		k    key
		want stream.Request
	}{
		{key{dc: "dc1", kind: kindService, name: "web", tag: "v2", passing: true},
			stream.Request{Topic: stream.TopicServiceHealth, Key: "web", Tag: "v2", PassingOnly: true}},
		{key{dc: "dc1", kind: kindService, name: "db"},
			stream.Request{Topic: stream.TopicServiceHealth, Key: "db"}},
		{key{dc: "dc1", kind: kindNode, name: "n1"},
			stream.Request{Topic: stream.TopicNode, Key: "n1"}},
	} {
		e := &entry{key: tc.k}
		if got := e.Subscription(); got != tc.want {
			t.Errorf("%+v: subscription %+v, want %+v", tc.k, got, tc.want)
		}
	}
}
