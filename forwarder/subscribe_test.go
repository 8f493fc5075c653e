package forwarder

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/stream"
	"github.com/cairnd/cairn/cluster/structs"
	"go.uber.org/zap"
)

// streamServer is an rpc.Server with a subscription publisher over its
// own state store, as a real server (replicas get the same writes).
type streamServer struct {
	srv   *rpc.Server
	addr  string
	store *state.Store
}

func startStreamServers(t *testing.T, n int) []*streamServer {
	t.Helper()
	out := make([]*streamServer, n)
	for i := range out {
		s := &streamServer{store: state.New(), srv: rpc.NewServer(zap.NewNop(), nil, rpc.Limits{})}
		pub, err := stream.NewPublisher(stream.Config{Datacenter: "dc1", State: func() stream.State { return s.store }})
		if err != nil {
			t.Fatal(err)
		}
		s.store.SetCommitHook(pub.Changed)
		s.srv.HandleStream(stream.MethodSubscribe, pub.Serve)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = ln.Addr().String()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.srv.Serve(context.Background(), ln)
		}()
		t.Cleanup(func() {
			s.srv.Close()
			<-done
		})
		out[i] = s
	}
	return out
}

// replicate applies the same write at idx to every store.
func replicate(t *testing.T, servers []*streamServer, idx uint64, status string) {
	t.Helper()
	for _, s := range servers {
		err := s.store.EnsureRegistration(idx, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
			Service: &structs.NodeService{ID: "web", Service: "web", Port: 80},
			Checks:  []*structs.HealthCheck{{CheckID: "web-chk", ServiceID: "web", Status: status}}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func nextEvent(t *testing.T, ch <-chan stream.Event) stream.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return stream.Event{}
}

func status(ev stream.Event) string {
	if len(ev.Health) != 1 {
		return "none"
	}
	return structs.AggregateStatus(ev.Health[0].Checks)
}

func TestSubscriptionsResumeAfterFailover(t *testing.T) {
	servers := startStreamServers(t, 2)
	replicate(t, servers, 1, structs.HealthPassing)
	var list []string
	for _, s := range servers {
		list = append(list, s.addr)
	}
	f, _ := startForwarder(t, testConfig(), list)
	events := make(chan stream.Event, 16)
	ups := make(chan string, 4)
	subs, err := f.NewSubscriptions(SubscriptionsConfig{
		Deliver: func(ev stream.Event) { events <- ev },
		Up:      func(server string) { ups <- server },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = subs.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	id := subs.Subscribe(stream.Request{Topic: stream.TopicServiceHealth, Key: "web"})
	if ev := nextEvent(t, events); ev.ID != id || ev.Kind != stream.KindSnapshot || ev.Index != 1 || status(ev) != structs.HealthPassing {
		t.Fatalf("first event %+v", ev)
	}
	first := <-ups
	replicate(t, servers, 2, structs.HealthWarning)
	if ev := nextEvent(t, events); ev.Kind != stream.KindUpdate || ev.Index != 2 || status(ev) != structs.HealthWarning {
		t.Fatalf("update %+v", ev)
	}

	// A change the client's server never applies (it lags, then goes
	// away): it arrives on the new stream as a fresh snapshot, resumed
	// from index 2.
	var other, cur *streamServer
	for _, s := range servers {
		if s.addr == first {
			cur = s
		} else {
			other = s
		}
	}
	replicate(t, []*streamServer{other}, 3, structs.HealthCritical)
	cur.srv.Close()
	start := time.Now()
	if ev := nextEvent(t, events); ev.ID != id || ev.Kind != stream.KindSnapshot || ev.Index != 3 || status(ev) != structs.HealthCritical {
		t.Fatalf("after failover %+v", ev)
	}
	if up := <-ups; up != other.addr {
		t.Fatalf("resumed on %s, want %s", up, other.addr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("resumed after %s", d)
	}
	// Unsubscribed: nothing more arrives for it, and the stream stays.
	subs.Unsubscribe(id)
	id2 := subs.Subscribe(stream.Request{Topic: stream.TopicNode, Key: "n1", Index: 0})
	replicate(t, []*streamServer{other}, 4, structs.HealthPassing)
	for {
		ev := nextEvent(t, events)
		if ev.ID == id {
			t.Fatalf("event after unsubscribe: %+v", ev)
		}
		if ev.ID == id2 && ev.Kind == stream.KindSnapshot {
			break
		}
	}
	if subs.Len() != 1 || !subs.Connected() {
		t.Fatalf("Len %d Connected %v", subs.Len(), subs.Connected())
	}
}

func TestSubscriptionsReportOlderServers(t *testing.T) {
	servers := startServers(t, 1) // no MethodSubscribe handler
	f, _ := startForwarder(t, testConfig(), addrs(servers))
	unsupported := make(chan error, 4)
	subs, err := f.NewSubscriptions(SubscriptionsConfig{
		Deliver:     func(stream.Event) {},
		Unsupported: func(err error) { unsupported <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = subs.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	subs.Subscribe(stream.Request{Topic: stream.TopicServiceHealth, Key: "web"})
	select {
	case err := <-unsupported:
		if !strings.Contains(err.Error(), "unknown method") {
			t.Fatalf("Unsupported(%v)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("older server not reported")
	}
	if subs.Connected() {
		t.Fatal("connected to a server without subscriptions")
	}
}
