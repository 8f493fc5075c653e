package agent_test

// End-to-end proof of subscriptions (issue 14) with real processes: 3
// servers and 20 client agents holding the same hot services. One check
// change on s7 makes the servers push exactly one event to each client
// holding s7 and none to the others, with no read RPC, and every holder's
// DNS shows it within 1 s. Killing (-9) the server a client streams
// through while a check flips: the client resumes elsewhere and applies
// the missed change within 2 s.

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

const (
	streamClients = 20
	// hotServices every client asks for; even clients also hold s7.
	hotServices = 5
)

// The cache's read methods for what these clients hold: none may be sent
// because of a change. (Catalog.NodeServices is left out: it is also
// the anti-entropy sync's read of the client's own node, on its own timer.)
var cacheReads = []string{`method="Health.ServiceNodes"`, `method="Catalog.ListNodes"`, `method="Catalog.ListServices"`}

type streamCluster struct {
	servers []*agenttest.Proc
	clients []*agenttest.Proc
}

func holdsS7(i int) bool { return i%2 == 0 }

func TestStreamSubscriptionsE2E(t *testing.T) {
	x := startStreamCluster(t)
	runSteps(t, x, []step[*streamCluster]{
		{"one s7 change: one event per s7 holder, none to others, no reads, DNS within 1s", testStreamFanOut},
		{"kill -9 the client's server while a check flips: converged within 2s", testStreamFailover},
	})
}

func startStreamCluster(t *testing.T) *streamCluster {
	t.Helper()
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	servers, join := startServerAgents(t, bin, "ss", 3)
	testutil.Eventually(t, 60*time.Second, "catalog writes accepted", func() error {
		_, err := cacheHTTP(http.MethodPut, "http://"+servers[0].HTTPAddr()+"/v1/catalog/register",
			map[string]any{"Node": "probe", "Address": "10.9.9.9"})
		return err
	})
	for s := 1; s <= 10; s++ {
		for j, suffix := range []string{"a", "b"} {
			register(t, servers[0], fmt.Sprintf("n%d%s", s, suffix), fmt.Sprintf("10.%d.0.%d", s, j+1), "s"+strconv.Itoa(s), "passing")
		}
	}
	x := &streamCluster{servers: servers}
	for i := range streamClients {
		x.clients = append(x.clients, agenttest.StartAgent(t, bin, "sc"+strconv.Itoa(i), "--retry-join", join))
	}
	// Every client asks for its hot services until all answer (each key
	// is then cached and subscribed).
	var wg sync.WaitGroup
	errs := make([]error, len(x.clients))
	for i, c := range x.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := x.names(i)
			errs[i] = testutil.Wait(t.Context(), 60*time.Second, func() error {
				for _, n := range names {
					r, err := dnsA(c.DNSAddr(), n+".service.consul.", time.Second)
					if err != nil {
						return err
					}
					if len(answerAddrs(r)) != 2 {
						return fmt.Errorf("%s on %s: %v", n, c.Name, answerAddrs(r))
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range x.clients {
		want := float64(len(x.names(i)))
		testutil.Eventually(t, 10*time.Second, c.Name+" subscribed", func() error {
			if n := cacheMetric(t, c, "cairn_cache_watched_keys"); n != want {
				return fmt.Errorf("%s holds %v subscriptions, want %v", c.Name, n, want)
			}
			return nil
		})
	}
	return x
}

// names are the services client i asks for.
func (x *streamCluster) names(i int) []string {
	var out []string
	for s := 1; s <= hotServices; s++ {
		out = append(out, "s"+strconv.Itoa(s))
	}
	if holdsS7(i) {
		out = append(out, "s7")
	}
	return out
}

// sumServers sums a metric over the servers still running.
func (x *streamCluster) sumServers(t *testing.T, name string, labels ...string) float64 {
	var sum float64
	for _, s := range x.servers {
		if !s.Exited() {
			sum += cacheMetric(t, s, name, labels...)
		}
	}
	return sum
}

func (x *streamCluster) reads(t *testing.T, c *agenttest.Proc) float64 {
	var sum float64
	for _, m := range cacheReads {
		sum += cacheMetric(t, c, "cairn_forwarder_requests_total", m)
	}
	return sum
}

// waitS7 waits until every s7 holder's DNS answer for s7 is want.
func (x *streamCluster) waitS7(t *testing.T, within time.Duration, from time.Time, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	var wg sync.WaitGroup
	late := make([]string, len(x.clients))
	for i, c := range x.clients {
		if !holdsS7(i) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []string
			for time.Since(from) < within {
				r, err := dnsA(c.DNSAddr(), "s7.service.consul.", 200*time.Millisecond)
				if err == nil {
					got = answerAddrs(r)
					slices.Sort(got)
					if slices.Equal(got, want) {
						return
					}
				}
				time.Sleep(5 * time.Millisecond) // polling pace, not synchronisation
			}
			late[i] = fmt.Sprintf("%s: s7 = %v after %s, want %v", c.Name, got, within, want)
		}()
	}
	wg.Wait()
	for _, l := range late {
		if l != "" {
			t.Error(l)
		}
	}
}

func testStreamFanOut(t *testing.T, x *streamCluster) {
	// Settle: the subscriptions' first answers are out and no update is
	// moving (client agents' own anti-entropy touches only their nodes).
	updates := func() float64 { return x.sumServers(t, "cairn_stream_events_sent_total", `kind="update"`) }
	pushed := make([]float64, len(x.clients))
	reads := make([]float64, len(x.clients))
	before := updates()
	for i, c := range x.clients {
		pushed[i] = cacheMetric(t, c, "cairn_cache_pushed_total")
		reads[i] = x.reads(t, c)
	}
	if after := updates(); after != before {
		t.Fatalf("updates moving before the change: %v -> %v", before, after)
	}

	register(t, x.servers[1], "n7b", "10.7.0.2", "s7", "critical")
	acked := time.Now()
	x.waitS7(t, time.Second, acked, "10.7.0.1")
	t.Logf("every s7 holder's DNS changed within %s of the write", time.Since(acked).Round(time.Millisecond))

	holders := 0
	for i := range x.clients {
		if holdsS7(i) {
			holders++
		}
	}
	testutil.Eventually(t, 2*time.Second, "one update per s7 holder", func() error {
		if d := updates() - before; d != float64(holders) {
			return fmt.Errorf("servers sent %v updates, want %d", d, holders)
		}
		return nil
	})
	for i, c := range x.clients {
		want := 0.0
		if holdsS7(i) {
			want = 1
		}
		if d := cacheMetric(t, c, "cairn_cache_pushed_total") - pushed[i]; d != want {
			t.Errorf("%s (holds s7: %v) applied %v pushed events, want %v", c.Name, holdsS7(i), d, want)
		}
		if d := x.reads(t, c) - reads[i]; d != 0 {
			t.Errorf("%s sent %v read RPCs after the change, want 0", c.Name, d)
		}
	}
	if d := updates() - before; d != float64(holders) {
		t.Errorf("servers sent %v updates in all, want %d", d, holders)
	}
}

// streamServer returns the server the client's subscription stream is
// open to, from the client's log.
func (x *streamCluster) streamServer(t *testing.T, c *agenttest.Proc) *agenttest.Proc {
	t.Helper()
	var found *agenttest.Proc
	testutil.Eventually(t, 5*time.Second, c.Name+" stream open", func() error {
		log := c.Log()
		i := strings.LastIndex(log, "subscription stream open")
		if i < 0 {
			return fmt.Errorf("no stream in %s's log", c.Name)
		}
		line := log[i:]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		for _, s := range x.servers {
			if !s.Exited() && strings.Contains(line, s.RPCAddr()) {
				found = s
				return nil
			}
		}
		return fmt.Errorf("no live server in %q", line)
	})
	return found
}

func testStreamFailover(t *testing.T, x *streamCluster) {
	c := x.clients[0] // holds s7
	victim := x.streamServer(t, c)
	var other *agenttest.Proc
	for _, s := range x.servers {
		if s != victim {
			other = s
			break
		}
	}
	// Freeze the victim so the flip cannot reach the client through it,
	// write the flip through a survivor (if the victim led, the write
	// waits for the next leader), then kill -9 the victim: the client
	// resumes on another server from the index it held.
	victim.Signal(syscall.SIGSTOP)
	var acked time.Time
	testutil.Eventually(t, 15*time.Second, "flip accepted with the victim frozen", func() error {
		_, err := cacheHTTP(http.MethodPut, "http://"+other.HTTPAddr()+"/v1/catalog/register", map[string]any{
			"Node": "n7b", "Address": "10.7.0.2",
			"Service": map[string]any{"ID": "s7", "Service": "s7", "Port": 80},
			"Check":   map[string]any{"CheckID": "chk-s7", "Name": "s7", "Status": "passing", "ServiceID": "s7"},
		})
		acked = time.Now()
		return err
	})
	// The client has not heard of it: its stream is on the frozen victim.
	if r, err := dnsA(c.DNSAddr(), "s7.service.consul.", time.Second); err != nil || hasAddr(r, "10.7.0.2") {
		t.Fatalf("%s saw the flip through a frozen server: %v %v", c.Name, err, r)
	}
	victim.Kill()
	x.waitS7(t, 2*time.Second, acked, "10.7.0.1", "10.7.0.2")
	t.Logf("s7 holders converged within %s of the write (server %s killed)", time.Since(acked).Round(time.Millisecond), victim.Name)
	if now := x.streamServer(t, c); now == victim {
		t.Fatalf("%s still streams through the killed server", c.Name)
	}
}
