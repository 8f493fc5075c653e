package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/config"
)

// The API server's ReadTimeout: a body that stalls is cut off after it; a
// body that arrives lifts the read deadline, so a handler that then waits
// far longer (a blocking query) keeps its request context. (Older Go
// releases left the deadline on the connection and cancelled the request
// when it fired; this pins the behaviour the agent relies on.)
func TestReadTimeoutSparesBlockingQueries(t *testing.T) {
	const d = 200 * time.Millisecond
	type result struct {
		body string
		err  error
		ctx  error // request context error after waiting 4*d
	}
	results := make(chan result, 2)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var res result
		res.body, res.err = string(b), err
		if err == nil {
			// Wait like a blocking query; a connection deadline left in
			// place would cancel r.Context() when it fires.
			select {
			case <-r.Context().Done():
			case <-time.After(4 * d):
			}
			res.ctx = r.Context().Err()
			io.WriteString(w, "done")
		}
		results <- res
	}))
	srv.Config.ReadTimeout = d
	srv.Start()
	defer srv.Close()

	t.Run("stalled body is cut off", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "PUT /v1/kv/k HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly ten b")
		select {
		case res := <-results:
			if !errors.Is(res.err, os.ErrDeadlineExceeded) {
				t.Fatalf("body read error = %v, want a deadline error", res.err)
			}
			if el := time.Since(start); el < d {
				t.Fatalf("cut off after %v, before the deadline %v", el, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stalled body still being read after 10s")
		}
	})

	t.Run("read body lifts the deadline", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT /v1/kv/k HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		res := <-results
		if res.err != nil || res.body != "hello" {
			t.Fatalf("body = %q, %v", res.body, res.err)
		}
		if res.ctx != nil || strings.TrimSpace(string(b)) != "done" {
			t.Fatalf("request context ended (%v) while the handler waited past the body deadline; response %q", res.ctx, b)
		}
	})
}

func TestRequestLimits(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	send := func(h http.Handler, method, remote string) int {
		r := httptest.NewRequest(method, "http://agent/v1/kv/k", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	newAgent := func(rl config.RequestLimits) *Agent {
		cfg := config.DefaultConfig()
		cfg.Limits.RequestLimits = rl
		return &Agent{cfg: cfg, log: zap.NewNop(), reg: prometheus.NewRegistry()}
	}
	t.Run("disabled by default", func(t *testing.T) {
		h := newAgent(config.DefaultConfig().Limits.RequestLimits).limitRequests(ok)
		for i := range 100 {
			if c := send(h, "PUT", "127.0.0.1:1000"); c != 200 {
				t.Fatalf("request %d: %d with limits off", i, c)
			}
		}
	})
	t.Run("enforcing", func(t *testing.T) {
		// Rates far below what the loop can send: the bucket cannot refill
		// a token between two requests.
		h := newAgent(config.RequestLimits{Mode: "enforcing", WriteRate: 0.001}).limitRequests(ok)
		steps := []struct {
			method, remote string
			want           int
		}{
			{"PUT", "127.0.0.1:1000", 200},
			{"PUT", "127.0.0.1:1001", 429}, // same IP, another connection
			{"DELETE", "127.0.0.1:1000", 429},
			{"GET", "127.0.0.1:1000", 200}, // reads unlimited
			{"PUT", "127.0.0.2:1000", 200}, // another client
			{"PUT", "[::ffff:127.0.0.2]:1000", 429},
		}
		for i, s := range steps {
			if c := send(h, s.method, s.remote); c != s.want {
				t.Fatalf("step %d %s from %s: %d, want %d", i, s.method, s.remote, c, s.want)
			}
		}
	})
	t.Run("permissive serves", func(t *testing.T) {
		a := newAgent(config.RequestLimits{Mode: "permissive", ReadRate: 0.001})
		h := a.limitRequests(ok)
		for i := range 3 {
			if c := send(h, "GET", "127.0.0.1:1000"); c != 200 {
				t.Fatalf("request %d: %d in permissive mode", i, c)
			}
		}
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		for _, mf := range mfs {
			if mf.GetName() == "cairn_http_requests_rate_limited_total" {
				got = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		if got != 2 {
			t.Fatalf("rate-limited counter = %v, want 2", got)
		}
	})
}
