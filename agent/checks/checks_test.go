package checks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

type result struct{ status, output string }

// recorder is a Notifier that keeps every result per check.
type recorder struct {
	mu      sync.Mutex
	results map[string][]result
	ch      chan result
}

func newRecorder() *recorder {
	return &recorder{results: map[string][]result{}, ch: make(chan result, 1024)}
}

func (r *recorder) UpdateCheck(id, status, output string) {
	r.mu.Lock()
	r.results[id] = append(r.results[id], result{status, output})
	r.mu.Unlock()
	select {
	case r.ch <- result{status, output}:
	default:
	}
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.results[id])
}

func (r *recorder) next(t *testing.T) result {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no check result within 10s")
	}
	return result{}
}

func probeOnce(t *testing.T, p Probe) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, o := p.Probe(ctx)
	return result{s, o}
}

func TestHTTPStatusMapping(t *testing.T) {
	cases := []struct {
		code int
		want string
	}{
		{200, structs.HealthPassing},
		{204, structs.HealthPassing},
		{429, structs.HealthWarning},
		{500, structs.HealthCritical},
		{404, structs.HealthCritical},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte("body-text"))
		}))
		res := probeOnce(t, NewHTTP(srv.URL+"/health", "", nil, false))
		srv.Close()
		if res.status != tc.want {
			t.Errorf("code %d: status %q, want %q (output %q)", tc.code, res.status, tc.want, res.output)
		}
		if !strings.HasPrefix(res.output, "HTTP GET "+srv.URL+"/health: ") || !strings.Contains(res.output, http.StatusText(tc.code)) {
			t.Errorf("code %d: output %q lacks Consul's prefix", tc.code, res.output)
		}
		if tc.code != 204 && !strings.HasSuffix(res.output, "Output: body-text") {
			t.Errorf("code %d: output %q lacks body", tc.code, res.output)
		}
	}
}

func TestHTTPMethodHeadersAndTruncation(t *testing.T) {
	var gotMethod, gotHeader, gotUA string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotHeader, gotUA = r.Method, r.Header.Get("X-Token"), r.UserAgent()
		_, _ = w.Write([]byte(strings.Repeat("x", 3*CheckBufSize)))
	}))
	defer srv.Close()
	res := probeOnce(t, NewHTTP(srv.URL, http.MethodPost, http.Header{"X-Token": {"s3cret"}}, false))
	if res.status != structs.HealthPassing {
		t.Fatalf("status %q", res.status)
	}
	if gotMethod != http.MethodPost || gotHeader != "s3cret" || gotUA != userAgent {
		t.Fatalf("method %q header %q ua %q", gotMethod, gotHeader, gotUA)
	}
	if n := strings.Count(res.output, "x"); n != CheckBufSize {
		t.Fatalf("body kept %d bytes, want %d", n, CheckBufSize)
	}
}

func TestHTTPUnreachableIsCritical(t *testing.T) {
	addr := closedAddr(t)
	res := probeOnce(t, NewHTTP("http://"+addr+"/", "", nil, false))
	if res.status != structs.HealthCritical || res.output == "" {
		t.Fatalf("got %+v", res)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	res := probeOnce(t, &TCP{Addr: ln.Addr().String()})
	if res.status != structs.HealthPassing || res.output != "TCP connect "+ln.Addr().String()+": Success" {
		t.Fatalf("listening: %+v", res)
	}
	res = probeOnce(t, &TCP{Addr: closedAddr(t)})
	if res.status != structs.HealthCritical || !strings.Contains(res.output, "refused") {
		t.Fatalf("closed: %+v", res)
	}
}

func TestScriptExitCodes(t *testing.T) {
	cases := []struct {
		script, status, output string
	}{
		{"echo ok", structs.HealthPassing, "ok\n"},
		{"echo warn >&2; exit 1", structs.HealthWarning, "warn\n"},
		{"echo out; echo err >&2; exit 2", structs.HealthCritical, "out\nerr\n"},
	}
	for _, tc := range cases {
		res := probeOnce(t, &Script{Args: []string{"sh", "-c", tc.script}})
		if res != (result{tc.status, tc.output}) {
			t.Errorf("%q: got %+v, want %s %q", tc.script, res, tc.status, tc.output)
		}
	}
	res := probeOnce(t, &Script{Args: []string{"/nonexistent/cairn-check"}})
	if res.status != structs.HealthCritical {
		t.Errorf("missing binary: %+v", res)
	}
}

func TestScriptOutputTruncatedToTail(t *testing.T) {
	// 3 x CheckBufSize 'a' bytes then a marker: the tail must survive.
	res := probeOnce(t, &Script{Args: []string{"sh", "-c", "head -c 12288 /dev/zero | tr '\\0' a; echo END"}})
	if res.status != structs.HealthPassing {
		t.Fatalf("status %+v", res.status)
	}
	if !strings.HasPrefix(res.output, "Captured 4096 of 12292 bytes\n...\n") || !strings.HasSuffix(res.output, "END\n") {
		t.Fatalf("output head %q tail %q", res.output[:40], res.output[len(res.output)-10:])
	}
	if kept := strings.Count(strings.SplitN(res.output, "...\n", 2)[1], "a"); kept != CheckBufSize-4 {
		t.Fatalf("kept %d a's", kept)
	}
}

func TestScriptTimeoutKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, o := (&Script{Args: []string{"sh", "-c", "sleep 30; echo never"}}).Probe(ctx)
	if s != structs.HealthCritical || !strings.HasPrefix(o, "Timed out") {
		t.Fatalf("got %s %q", s, o)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

func TestNewRefusesScriptsUnlessAllowed(t *testing.T) {
	d := Definition{ID: "s", Args: []string{"true"}, Interval: time.Second}
	_, err := New(d, newRecorder(), Options{})
	if !errors.Is(err, ErrScriptsDisabled) || !strings.Contains(err.Error(), "--enable-local-script-checks") {
		t.Fatalf("err = %v", err)
	}
	r, err := New(d, newRecorder(), Options{AllowScripts: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
}

func TestDefinitionValidate(t *testing.T) {
	bad := []Definition{
		{ID: ""},
		{ID: "x"},
		{ID: "x", HTTP: "http://a", TCP: "a:1", Interval: time.Second},
		{ID: "x", HTTP: "http://a"},
		{ID: "x", TTL: time.Second, Status: "bogus"},
	}
	for _, d := range bad {
		if err := d.Validate(); err == nil {
			t.Errorf("%+v: want error", d)
		}
	}
	ttl := Definition{ID: "t", TTL: time.Second, ServiceID: "web"}
	if err := ttl.Validate(); err != nil {
		t.Fatal(err)
	}
	hc := ttl.HealthCheck("n1")
	if hc.Status != structs.HealthCritical || hc.Type != TypeTTL || hc.Name != "service:web" || hc.Node != "n1" {
		t.Fatalf("%+v", hc)
	}
	if ttl.ReapAfter() != 0 {
		t.Fatal("unset reap delay not 0")
	}
	ttl.DeregisterCriticalServiceAfter = time.Second
	if ttl.ReapAfter() != MinDeregisterCriticalServiceAfter {
		t.Fatalf("reap delay %v not raised to the minimum", ttl.ReapAfter())
	}
	r, err := New(ttl, newRecorder(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*TTL); !ok {
		t.Fatalf("TTL definition built %T", r)
	}
}

// The timing tests below run in a synctest bubble: the clock is fake and
// only moves when every goroutine in the bubble is blocked, so the checks'
// timers fire at exact, repeatable instants.

func TestTTLExpiryAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 150 * time.Millisecond
		rec := newRecorder()
		c := NewTTL("t", ttl, rec, nil)
		start := time.Now()
		c.Start()
		defer c.Stop()
		if res := rec.next(t); res != (result{structs.HealthCritical, "TTL expired"}) {
			t.Fatalf("first expiry %+v", res)
		}
		if d := time.Since(start); d != ttl {
			t.Fatalf("first expiry after %v, want %v", d, ttl)
		}
		c.Pass("all good")
		if res := rec.next(t); res != (result{structs.HealthPassing, "all good"}) {
			t.Fatalf("pass %+v", res)
		}
		// Keep it alive across several TTLs by updating every 50 ms: an
		// expiry in between would be the next result instead of the warn.
		for range 6 {
			testutil.Advance(50 * time.Millisecond)
			c.Warn("still here")
			if res := rec.next(t); res.status != structs.HealthWarning {
				t.Fatalf("warn %+v", res)
			}
		}
		lastUpdate := time.Now()
		res := rec.next(t)
		if res.status != structs.HealthCritical || res.output != "TTL expired (last output before timeout follows): still here" {
			t.Fatalf("second expiry %+v", res)
		}
		if d := time.Since(lastUpdate); d != ttl {
			t.Fatalf("second expiry %v after the last update, want %v", d, ttl)
		}
		if err := c.Update("bogus", ""); err == nil {
			t.Fatal("bogus status accepted")
		}
		// Expired once: no repeated notices, however long it stays expired.
		n := rec.count("t")
		testutil.Advance(10 * ttl)
		if rec.count("t") != n {
			t.Fatalf("expired check notified again")
		}
	})
}

// slowProbe counts concurrent runs.
type slowProbe struct {
	delay           time.Duration
	running, maxRun atomic.Int32
	runs            atomic.Int32
	cancelled       atomic.Bool
}

func (p *slowProbe) Probe(ctx context.Context) (string, string) {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.maxRun.Load()
		if n <= m || p.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	p.runs.Add(1)
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		p.cancelled.Store(true)
	}
	return structs.HealthPassing, "ok"
}

func TestPeriodicNoOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &slowProbe{delay: 60 * time.Millisecond}
		rec := newRecorder()
		c := NewPeriodic("slow", p, Schedule{Interval: 10 * time.Millisecond}, rec, nil)
		c.Start()
		testutil.Advance(500 * time.Millisecond)
		c.Stop()
		if m := p.maxRun.Load(); m != 1 {
			t.Fatalf("max concurrent runs %d, want 1", m)
		}
		runs := p.runs.Load()
		// Each run takes 60 ms plus ~10 ms interval: at most ~8 in 500 ms.
		if runs < 3 || runs > 9 {
			t.Fatalf("runs %d: slow check should delay, not skip or pile up", runs)
		}
		n := rec.count("slow")
		testutil.Advance(100 * time.Millisecond)
		if rec.count("slow") != n {
			t.Fatal("notified after Stop returned")
		}
	})
}

func TestPeriodicStopWaitsAndCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &slowProbe{delay: time.Minute}
		c := NewPeriodic("hang", p, Schedule{Interval: time.Millisecond, Timeout: time.Minute}, newRecorder(), nil)
		c.Start()
		defer c.Stop() // a failed check below must not leave the runner behind
		// The first run starts within one interval (the stagger).
		testutil.Advance(time.Millisecond)
		if p.running.Load() != 1 {
			t.Fatal("probe not running one interval after Start")
		}
		start := time.Now()
		c.Stop()
		if p.running.Load() != 0 {
			t.Fatal("Stop returned while a probe was still running")
		}
		if !p.cancelled.Load() || time.Since(start) != 0 {
			t.Fatalf("Stop did not cancel the in-flight probe (took %v)", time.Since(start))
		}
		c.Stop() // idempotent
		// Stop before Start: Start afterwards is a no-op and does not leak
		// (a goroutine left in the bubble would fail synctest.Test).
		c2 := NewPeriodic("never", p, Schedule{Interval: time.Millisecond}, newRecorder(), nil)
		c2.Stop()
		c2.Start()
	})
}

// clockProbe reports the time of each run.
type clockProbe struct{ at chan time.Time }

func (p clockProbe) Probe(ctx context.Context) (string, string) {
	select {
	case p.at <- time.Now():
	case <-ctx.Done():
	}
	return structs.HealthPassing, ""
}

func TestPeriodicIntervalAndJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		p := clockProbe{at: make(chan time.Time)}
		c := NewPeriodic("clock", p, Schedule{Interval: interval}, newRecorder(), nil)
		start := time.Now()
		c.Start()
		defer c.Stop()
		prev := <-p.at
		// The first run is staggered by up to one interval.
		if d := prev.Sub(start); d < 0 || d >= interval {
			t.Fatalf("first run %v after Start, want in [0, %v)", d, interval)
		}
		gaps := map[time.Duration]bool{}
		for range 20 {
			at := <-p.at
			// Later runs: the interval plus up to Interval/JitterFraction.
			gap := at.Sub(prev)
			if gap < interval || gap >= interval+interval/JitterFraction {
				t.Fatalf("run %v after the previous one, want in [%v, %v)", gap, interval, interval+interval/JitterFraction)
			}
			gaps[gap] = true
			prev = at
		}
		if len(gaps) < 2 {
			t.Fatalf("20 periods all equal (%v): no jitter", gaps)
		}
	})
}

func TestPeriodicStaggerAndTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	rec := newRecorder()
	c := NewPeriodic("h", NewHTTP(srv.URL, "", nil, false), Schedule{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}, rec, nil)
	start := time.Now()
	c.Start()
	defer c.Stop()
	res := rec.next(t)
	if res.status != structs.HealthCritical {
		t.Fatalf("hanging server: %+v", res)
	}
	// Stagger < interval (100 ms) + timeout (100 ms) + slack.
	if d := time.Since(start); d > time.Second {
		t.Fatalf("first result after %v", d)
	}
}

func TestNewEndToEndHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	rec := newRecorder()
	r, err := New(Definition{ID: "web", HTTP: srv.URL, Interval: time.Millisecond}, rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	defer r.Stop()
	if res := rec.next(t); res.status != structs.HealthWarning {
		t.Fatalf("%+v", res)
	}
}
