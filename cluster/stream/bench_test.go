package stream

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// BenchmarkFanOut: sessions (each its own connection, as client agents)
// hold 20 keys each, all of them "web"; one op is one write to web until
// every session has its update. Reports the heap and goroutines per
// session (client and server sides both live in this process).
func BenchmarkFanOut(b *testing.B) {
	const sessions, keys = 1000, 20
	store := state.New()
	pub, err := NewPublisher(Config{Datacenter: "dc1", State: func() State { return store }})
	if err != nil {
		b.Fatal(err)
	}
	store.SetCommitHook(pub.Changed)
	idx := uint64(0)
	write := func(status string) {
		idx++
		for _, name := range []string{"web", fmt.Sprint("s", idx%keys)} {
			if err := store.EnsureRegistration(idx, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Service: &structs.NodeService{ID: name, Service: name, Port: 80},
				Checks:  []*structs.HealthCheck{{CheckID: name, ServiceID: name, Status: status}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	write(structs.HealthPassing)
	srv := rpc.NewServer(nil, nil, rpc.Limits{MaxConnsPerClient: rpc.NoLimit})
	srv.HandleStream(MethodSubscribe, pub.Serve)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(context.Background(), ln)
	defer srv.Close()

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	got := make(chan struct{}, sessions)
	var wg sync.WaitGroup
	var streams []*rpc.Stream
	for range sessions {
		sess, err := rpc.Dial(context.Background(), ln.Addr().String(), rpc.DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		st, err := sess.OpenStream(context.Background(), MethodSubscribe, &Hello{})
		if err != nil {
			b.Fatal(err)
		}
		streams = append(streams, st)
		for k := range keys {
			key := "web"
			if k > 0 {
				key = fmt.Sprint("s", k)
			}
			if err := st.Send(&Request{Op: OpSubscribe, ID: uint64(k + 1), Topic: TopicServiceHealth, Key: key}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var ev Event
				if st.Recv(&ev) != nil {
					return
				}
				if ev.ID == 1 && ev.Kind == KindUpdate {
					got <- struct{}{}
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for value(pub.metrics.events.WithLabelValues("snapshot")) < sessions*keys {
		if time.Now().After(deadline) {
			b.Fatal("snapshots not all sent")
		}
		time.Sleep(10 * time.Millisecond) // waiting for set-up, not ordering
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	heapKB := float64(m1.HeapInuse-m0.HeapInuse) / sessions / 1024
	goroutines := float64(runtime.NumGoroutine()-g0) / sessions
	b.ResetTimer()
	for i := range b.N {
		status := structs.HealthCritical
		if i%2 == 1 {
			status = structs.HealthPassing
		}
		write(status)
		for range sessions {
			<-got
		}
	}
	b.StopTimer()
	b.ReportMetric(heapKB, "heap_kb/session")
	b.ReportMetric(goroutines, "goroutines/session")
	for _, st := range streams {
		st.Close()
	}
	wg.Wait()
}
