package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	ctestutil "github.com/cairnd/cairn/cluster/testutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// harness is a publisher over a state.Store served by a real rpc.Server
// on loopback; writes go through the store's commit hook as in the FSM.
type harness struct {
	t     *testing.T
	reads atomic.Int64 // CheckServiceNodes calls by the publisher
	store *state.Store
	pub   *Publisher
	addr  string
	reg   *prometheus.Registry
	idx   uint64
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, store: state.New(), reg: prometheus.NewRegistry()}
	cfg.Datacenter = "dc1"
	cfg.State = func() State { return countingState{h.store, &h.reads} }
	cfg.Registry = h.reg
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.pub = pub
	h.store.SetCommitHook(pub.Changed)
	srv := rpc.NewServer(nil, nil, rpc.Limits{})
	srv.HandleStream(MethodSubscribe, pub.Serve)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})
	return h
}

// register writes one instance of service on node with a check in status.
func (h *harness) register(node, service, status string, tags ...string) uint64 {
	h.t.Helper()
	h.idx++
	err := h.store.EnsureRegistration(h.idx, &structs.RegisterRequest{
		Node: node, Address: "10.0.0.1",
		Service: &structs.NodeService{ID: service, Service: service, Tags: tags, Port: 80},
		Checks:  []*structs.HealthCheck{{CheckID: service + "-chk", ServiceID: service, Status: status}},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.idx
}

// countingState counts the publisher's result reads.
type countingState struct {
	*state.Store
	n *atomic.Int64
}

func (c countingState) CheckServiceNodes(service, tag string, passingOnly bool) (uint64, []structs.CheckServiceNode) {
	c.n.Add(1)
	return c.Store.CheckServiceNodes(service, tag, passingOnly)
}

// client is one session with its subscription stream.
type client struct {
	t  *testing.T
	st *rpc.Stream
}

func (h *harness) dial() *client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := rpc.Dial(ctx, h.addr, rpc.DialOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { sess.Close() })
	st, err := sess.OpenStream(ctx, MethodSubscribe, &Hello{Datacenter: "dc1"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	return &client{t: h.t, st: st}
}

func (c *client) send(r Request) {
	c.t.Helper()
	if err := c.st.Send(&r); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next event, failing the test after 5 s.
func (c *client) next() Event {
	c.t.Helper()
	type res struct {
		ev  Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var ev Event
		err := c.st.Recv(&ev)
		ch <- res{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			c.t.Fatalf("recv: %v", r.err)
		}
		return r.ev
	case <-time.After(5 * time.Second):
		c.t.Fatal("no event within 5s")
	}
	return Event{}
}

func statuses(ev Event) string {
	var b []string
	for _, n := range ev.Health {
		b = append(b, n.Node.Node+"="+structs.AggregateStatus(n.Checks))
	}
	return strings.Join(b, ",")
}

func TestSnapshotThenOrderedUpdatesForTheKeyOnly(t *testing.T) {
	h := newHarness(t, Config{})
	h.register("n1", "web", structs.HealthPassing)
	h.register("n1", "db", structs.HealthPassing)
	c := h.dial()
	c.send(Request{Op: OpSubscribe, ID: 7, Topic: TopicServiceHealth, Key: "web"})
	ev := c.next()
	if ev.ID != 7 || ev.Kind != KindSnapshot || statuses(ev) != "n1=passing" {
		t.Fatalf("first event = %+v (%s), want snapshot n1=passing", ev, statuses(ev))
	}
	last := ev.Index
	// db changes are not web's business; web's changes arrive in order.
	h.register("n1", "db", structs.HealthCritical)
	want := []string{"n1=critical", "n1=warning", "n1=passing"}
	for _, s := range []string{structs.HealthCritical, structs.HealthWarning, structs.HealthPassing} {
		idx := h.register("n1", "web", s)
		ev := c.next()
		if ev.Kind != KindUpdate || ev.Index != idx || ev.Index <= last {
			t.Fatalf("event %+v, want update at %d after %d", ev, idx, last)
		}
		if got := statuses(ev); got != want[0] {
			t.Fatalf("update %d = %s, want %s", idx, got, want[0])
		}
		want, last = want[1:], ev.Index
	}
	// Counted once Send returned, which may be just after the client read it.
	ctestutil.Eventually(t, 5*time.Second, "3 updates counted", func() error {
		if n := value(h.pub.metrics.events.WithLabelValues("update")); n != 3 {
			return fmt.Errorf("updates sent = %v, want 3", n)
		}
		return nil
	})
}

func TestPassingOnlyAndTagFiltersAndNoEventWhenFilteredResultSame(t *testing.T) {
	h := newHarness(t, Config{})
	h.register("n1", "web", structs.HealthPassing, "v1")
	c := h.dial()
	c.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web", PassingOnly: true})
	if ev := c.next(); statuses(ev) != "n1=passing" {
		t.Fatalf("snapshot %s", statuses(ev))
	}
	h.register("n1", "web", structs.HealthCritical, "v1")
	if ev := c.next(); ev.Kind != KindUpdate || len(ev.Health) != 0 {
		t.Fatalf("passing-only after critical = %+v", ev)
	}
	// Still critical, other output: the filtered result is unchanged.
	h.idx++
	if err := h.store.EnsureRegistration(h.idx, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Checks: []*structs.HealthCheck{{CheckID: "web-chk", ServiceID: "web", Status: structs.HealthCritical, Output: "still down"}}}); err != nil {
		t.Fatal(err)
	}
	// A marker subscription proves the stream moved past that write.
	c.send(Request{Op: OpSubscribe, ID: 2, Topic: TopicNode, Key: "n1"})
	if ev := c.next(); ev.ID != 2 || ev.Kind != KindSnapshot || ev.Node == nil || ev.Node.Node != "n1" {
		t.Fatalf("want node snapshot for subscription 2 (no event for 1), got %+v", ev)
	}
}

func TestResumeFromIndex(t *testing.T) {
	h := newHarness(t, Config{})
	h.register("n1", "web", structs.HealthPassing)
	c := h.dial()
	c.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web"})
	snap := c.next()

	// Same index: nothing to send but Resumed.
	c2 := h.dial()
	c2.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web", Index: snap.Index})
	if ev := c2.next(); ev.Kind != KindResumed || ev.Index != snap.Index || ev.Health != nil {
		t.Fatalf("resume at current index = %+v, want resumed at %d", ev, snap.Index)
	}
	// The change the client missed: a fresh snapshot, counted.
	idx := h.register("n1", "web", structs.HealthCritical)
	c3 := h.dial()
	c3.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web", Index: snap.Index})
	if ev := c3.next(); ev.Kind != KindSnapshot || ev.Index != idx || statuses(ev) != "n1=critical" {
		t.Fatalf("resume after a change = %+v, want snapshot at %d", ev, idx)
	}
	if n := value(h.pub.metrics.resnapshots); n != 1 {
		t.Errorf("resnapshots = %v, want 1", n)
	}
	// A client ahead of this server (lagging follower): no answer until
	// the server has applied the client's index.
	c4 := h.dial()
	c4.send(Request{Op: OpSubscribe, ID: 9, Topic: TopicServiceHealth, Key: "web", Index: idx + 2})
	c4.send(Request{Op: OpSubscribe, ID: 10, Topic: TopicNode, Key: "n1"})
	if ev := c4.next(); ev.ID != 10 {
		t.Fatalf("server behind the client answered %+v first", ev)
	}
	h.register("n1", "db", structs.HealthPassing) // idx+1: not web
	ahead := h.register("n1", "web", structs.HealthPassing)
	for {
		ev := c4.next()
		if ev.ID == 10 {
			continue // node n1 moved too
		}
		// The server reached the client's index on the very write the
		// client holds: Resumed.
		if ev.ID != 9 || ev.Kind != KindResumed || ev.Index != ahead {
			t.Fatalf("after catching up: %+v, want resumed at %d", ev, ahead)
		}
		break
	}
}

func TestUnsubscribeStopsEventsAndBadRequestsAreRefused(t *testing.T) {
	h := newHarness(t, Config{MaxSubscriptions: 2})
	h.register("n1", "web", structs.HealthPassing)
	c := h.dial()
	c.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web"})
	c.next()
	c.send(Request{Op: OpUnsubscribe, ID: 1})
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Op: 9, ID: 2}, "field Op"},
		{Request{Op: OpSubscribe, ID: 3, Topic: 77, Key: "x"}, "field Topic"},
		{Request{Op: OpSubscribe, ID: 4, Topic: TopicServiceHealth}, "field Key"},
		{Request{Op: OpSubscribe, ID: 5, Topic: TopicServiceHealth, Key: "x", Datacenter: "dc9"}, "field Datacenter"},
		{Request{Op: OpSubscribe, ID: 6, Topic: TopicNode, Key: "n1", Tag: "t"}, "field Tag"},
	} {
		c.send(tc.r)
		ev := c.next()
		if ev.ID != tc.r.ID || ev.Kind != KindError || !strings.Contains(ev.Error, tc.want) {
			t.Errorf("%+v answered %+v, want error naming %s", tc.r, ev, tc.want)
		}
	}
	h.register("n1", "web", structs.HealthCritical) // unsubscribed: silent
	c.send(Request{Op: OpSubscribe, ID: 20, Topic: TopicNode, Key: "a"})
	c.send(Request{Op: OpSubscribe, ID: 21, Topic: TopicNode, Key: "b"})
	c.send(Request{Op: OpSubscribe, ID: 22, Topic: TopicNode, Key: "c"})
	got := map[uint64]Kind{}
	for range 3 {
		ev := c.next()
		got[ev.ID] = ev.Kind
	}
	if got[20] != KindSnapshot || got[21] != KindSnapshot || got[22] != KindError {
		t.Errorf("with MaxSubscriptions 2: %v", got)
	}
	if n := value(h.pub.metrics.subscriptions); n != 2 {
		t.Errorf("subscriptions gauge = %v, want 2", n)
	}
}

// A subscriber that stops reading is dropped once a frame waits longer
// than SendTimeout; meanwhile apply and the other subscribers go on.
func TestSlowSubscriberIsDroppedWithoutBlockingApply(t *testing.T) {
	h := newHarness(t, Config{SendTimeout: 500 * time.Millisecond})
	// Results of ~140 KB: two fill the yamux window (256 KiB) of the
	// stuck one, while the one that reads never waits for window.
	big := strings.Repeat("x", 1024)
	for i := range 64 {
		h.register(fmt.Sprintf("n%02d", i), "web", structs.HealthPassing, big)
	}
	slow, fast := h.dial(), h.dial()
	slow.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web"})
	fast.send(Request{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web"})
	fast.next()
	start := time.Now()
	for i := range 40 {
		status := structs.HealthPassing
		if i%2 == 0 {
			status = structs.HealthCritical
		}
		h.register("n00", "web", status, big)
		ev := fast.next() // the fast one keeps up, one event per change
		if ev.Index != h.idx {
			t.Fatalf("fast subscriber at %d, want %d", ev.Index, h.idx)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("40 writes took %s with a stuck subscriber", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for value(h.pub.metrics.drops) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("stuck subscriber never dropped")
		}
		h.register("n00", "web", structs.HealthWarning, big, fmt.Sprint(h.idx))
		fast.next()
	}
	// The dropped client's stream ends; it resumes on a new one.
	var err error
	for err == nil {
		var ev Event
		err = slow.st.Recv(&ev)
	}
	var te *rpc.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("dropped stream ended with %v", err)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// N sessions holding the same key cost one read of it per change.
func TestResultBuiltOncePerChangeForAllSessions(t *testing.T) {
	h := newHarness(t, Config{})
	h.register("n1", "web", structs.HealthPassing)
	var cs []*client
	for i := range 10 {
		c := h.dial()
		c.send(Request{Op: OpSubscribe, ID: uint64(i + 1), Topic: TopicServiceHealth, Key: "web"})
		c.next()
		cs = append(cs, c)
	}
	before := h.reads.Load()
	h.register("n1", "web", structs.HealthCritical)
	for _, c := range cs {
		if ev := c.next(); ev.Kind != KindUpdate || statuses(ev) != "n1=critical" {
			t.Fatalf("update %+v", ev)
		}
	}
	if n := h.reads.Load() - before; n != 1 {
		t.Errorf("10 sessions, one change: %d reads of web, want 1", n)
	}
}
