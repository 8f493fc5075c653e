package agent_test

// TestPausedLeaderReads: reads on a leader resumed after a pause.

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// readResult is one GET of the register key on the resumed old leader.
type readResult struct {
	consistent bool
	start, end time.Time
	value      string // "" when the read failed
	err        string
}

// TestPausedLeaderReads freezes the leader, commits a new value through the
// rest of the cluster, then resumes the old leader while readers hammer it
// (their first requests queued while it was frozen). A ?consistent read
// must never return the old value: it verifies leadership after reading,
// fails on the deposed leader and is retried on the new one. Default-mode
// reads are only measured: they may be stale in a short window, as in
// Consul (see cluster/server/doc.go); the figures are logged.
func TestPausedLeaderReads(t *testing.T) {
	const (
		readersPerMode = 4
		readFor        = 2 * time.Second // after the resume
	)
	procs := startPauseCluster(t)
	hc := pauseHTTPClient(t, 16)
	leader, lc, resume := overwriteBehindPausedLeader(t, procs, hc)

	readers := startRegisterReaders(lc, readersPerMode)
	// The readers' first requests now wait in the frozen leader's sockets;
	// the pause below only lets them get there before the resume.
	select {
	case <-time.After(200 * time.Millisecond):
	case <-t.Context().Done():
	}
	resume()
	resumed := time.Now()
	select {
	case <-time.After(readFor):
	case <-t.Context().Done():
	}
	results := readers.stop()
	t.Logf("read from %s, the resumed old leader", leader.Name)

	var (
		stats      [2]struct{ total, stale, fresh, failed int }
		lastStale  time.Duration
		staleOnDef []string
	)
	for _, r := range results {
		m := 0
		if r.consistent {
			m = 1
		}
		s := &stats[m]
		s.total++
		switch r.value {
		case "old":
			s.stale++
			if d := r.end.Sub(resumed); d > lastStale {
				lastStale = d
			}
			if r.consistent {
				t.Errorf("?consistent read on the resumed old leader returned the overwritten value (sent %v before the resume, answered %v after)",
					resumed.Sub(r.start).Round(time.Millisecond), r.end.Sub(resumed).Round(time.Millisecond))
			} else if len(staleOnDef) < 3 {
				staleOnDef = append(staleOnDef, fmt.Sprintf("answered %v after the resume", r.end.Sub(resumed).Round(time.Millisecond)))
			}
		case "new":
			s.fresh++
		default:
			s.failed++
		}
	}
	t.Logf("default reads on the resumed old leader: %d, stale %d, fresh %d, failed %d; last stale answer %v after the resume %v",
		stats[0].total, stats[0].stale, stats[0].fresh, stats[0].failed, lastStale.Round(time.Millisecond), staleOnDef)
	t.Logf("consistent reads on the resumed old leader: %d, stale %d, fresh %d, failed %d",
		stats[1].total, stats[1].stale, stats[1].fresh, stats[1].failed)
	if stats[1].fresh == 0 {
		t.Fatalf("no ?consistent read returned the new value: the check is vacuous")
	}
}

// overwriteBehindPausedLeader writes r=old through the leader, freezes the
// leader (SIGSTOP) and commits r=new through the others once they elected
// a new leader. It returns the frozen leader, a client of it, and resume,
// which sends SIGCONT (also done on cleanup if the test ends first).
func overwriteBehindPausedLeader(t *testing.T, procs []*agenttest.Proc, hc *http.Client) (*agenttest.Proc, pauseClient, func()) {
	t.Helper()
	var leader *agenttest.Proc
	var lc pauseClient
	var others []pauseClient
	l, err := agreedLeader([]pauseClient{{hc: hc, addr: procs[0].HTTPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		c := pauseClient{hc: hc, addr: p.HTTPAddr()}
		if p.RPCAddr() == l {
			leader, lc = p, c
		} else {
			others = append(others, c)
		}
	}
	if leader == nil {
		t.Fatalf("leader %s is none of ours", l)
	}
	if a, d := lc.put("r", "", "old"); a != ansTrue {
		t.Fatalf("write old value: %s %s", a, d)
	}

	leader.Signal(syscall.SIGSTOP)
	var once sync.Once
	resume := func() { once.Do(func() { leader.Signal(syscall.SIGCONT) }) }
	t.Cleanup(resume)
	testutil.Eventually(t, 30*time.Second, "a new leader among the others", func() error {
		nl, err := agreedLeader(others)
		if err != nil {
			return err
		}
		if nl == l {
			return fmt.Errorf("still %s", nl)
		}
		return nil
	})
	testutil.Eventually(t, 30*time.Second, "new value committed by the new leader", func() error {
		if a, d := others[0].put("r", "", "new"); a != ansTrue {
			return fmt.Errorf("%s %s", a, d)
		}
		return nil
	})
	return leader, lc, resume
}

// registerReaders read the key r through one client until stop, half of
// them ?consistent.
type registerReaders struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []readResult
}

func startRegisterReaders(c pauseClient, perMode int) *registerReaders {
	rr := &registerReaders{done: make(chan struct{})}
	for i := 0; i < 2*perMode; i++ {
		consistent := i%2 == 1
		rr.wg.Add(1)
		go func() {
			defer rr.wg.Done()
			for n := 0; n < 10000; n++ {
				select {
				case <-rr.done:
					return
				default:
				}
				rr.read(c, consistent)
			}
		}()
	}
	return rr
}

// read makes one GET of r and records it.
func (rr *registerReaders) read(c pauseClient, consistent bool) {
	q := ""
	if consistent {
		q = "consistent"
	}
	r := readResult{consistent: consistent, start: time.Now()}
	es, err := c.get("r", q)
	r.end = time.Now()
	switch {
	case err != nil:
		r.err = err.Error()
	case len(es) != 1:
		r.err = fmt.Sprintf("%d entries", len(es))
	default:
		r.value = string(es[0].Value)
	}
	rr.mu.Lock()
	rr.results = append(rr.results, r)
	rr.mu.Unlock()
}

// stop ends the readers and returns every read made.
func (rr *registerReaders) stop() []readResult {
	close(rr.done)
	rr.wg.Wait()
	return rr.results
}
