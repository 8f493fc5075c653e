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
