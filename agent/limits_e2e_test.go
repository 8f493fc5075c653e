package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// Connection limits (issue 15 item 5): the per-client caps of the HTTP API
// and the server port, and the file-limit-derived total caps that keep
// every listener serving when one is flooded.

// dialFrom opens a TCP connection from src (a loopback address).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// httpClientFrom is an HTTP client whose connections come from src.
func httpClientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func getOK(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b), nil
}

// keepAliveRequest sends one request on c and reads the response, leaving
// c an idle keep-alive connection.
func keepAliveRequest(c net.Conn, br *bufio.Reader) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /v1/status/leader HTTP/1.1\r\nHost: agent\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// closedBy reports whether the peer closed c (EOF or reset) within d.
func closedBy(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := c.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("got data %q, want the connection closed", b[:n])
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("still open after %v", d)
	case err == nil:
		return errors.New("read returned nothing and no error")
	}
	return nil // EOF or reset: closed
}

func metric(t *testing.T, c *http.Client, httpAddr, name string) string {
	t.Helper()
	body, err := getOK(c, "http://"+httpAddr+"/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func TestHTTPMaxConnsPerClient(t *testing.T) {
	p := agenttest.StartAgent(t, agenttest.Binary(t), "lim", "--dev")
	other := httpClientFrom("127.0.0.2")
	// 200 keep-alive connections from 127.0.0.1, each used once and left
	// idle: all are served.
	for i := range 200 {
		c := dialFrom(t, "127.0.0.1", p.HTTPAddr())
		if err := keepAliveRequest(c, bufio.NewReader(c)); err != nil {
			t.Fatalf("connection %d from 127.0.0.1: %v", i+1, err)
		}
	}
	// The 201st is closed at once, long before the 10 s header timeout
	// would close an idle new connection.
	start := time.Now()
	c := dialFrom(t, "127.0.0.1", p.HTTPAddr())
	if err := closedBy(c, 5*time.Second); err != nil {
		t.Fatalf("201st connection from 127.0.0.1: %v", err)
	}
	t.Logf("201st connection closed after %v", time.Since(start).Round(time.Millisecond))
	// Another client is served.
	if _, err := getOK(other, "http://"+p.HTTPAddr()+"/v1/status/leader"); err != nil {
		t.Fatalf("request from 127.0.0.2: %v", err)
	}
	if v := metric(t, other, p.HTTPAddr(), `cairn_http_conns_refused_total{reason="per_client"}`); v != "1" {
		t.Fatalf("cairn_http_conns_refused_total{reason=per_client} = %q, want 1", v)
	}
	if n := strings.Count(p.Log(), "connection limit reached"); n != 1 {
		t.Fatalf("%d limit log lines, want 1", n)
	}
}

func TestRPCMaxConnsPerClient(t *testing.T) {
	p := agenttest.StartAgent(t, agenttest.Binary(t), "lim", "--dev")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(src string) (*rpc.Session, error) {
		s, err := rpc.Dial(ctx, p.RPCAddr(), rpc.DialOptions{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}})
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return s, err
	}
	for i := range 100 {
		if _, err := dial("127.0.0.1"); err != nil {
			t.Fatalf("session %d from 127.0.0.1: %v", i+1, err)
		}
	}
	if _, err := dial("127.0.0.1"); err == nil {
		t.Fatal("101st session from 127.0.0.1 accepted")
	}
	s, err := dial("127.0.0.2")
	if err != nil {
		t.Fatalf("session from 127.0.0.2: %v", err)
	}
	var leader string
	if err := s.Call(ctx, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, &leader); err != nil {
		t.Fatalf("call from 127.0.0.2: %v", err)
	}
	other := httpClientFrom("127.0.0.2")
	if v := metric(t, other, p.HTTPAddr(), `cairn_rpc_conns_refused_total{reason="per_client"}`); v != "1" {
		t.Fatalf("cairn_rpc_conns_refused_total{reason=per_client} = %q, want 1", v)
	}
}

// At a 1,024 file limit, 1,100 idle connections to each of the HTTP API,
// the server port and DNS over TCP, all from one process, leave all three
// serving others (before the limits: accept4: too many open files on
// every port).
func TestFloodAtLowFileLimit(t *testing.T) {
	bin := agenttest.Binary(t)
	wrapper := filepath.Join(t.TempDir(), "cairn-nofile-1024")
	script := "#!/bin/sh\nulimit -n 1024 || exit 1\nexec " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := agenttest.StartAgent(t, wrapper, "flood", "--dev")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(limits), "Max open files            1024") {
		t.Fatalf("agent's file limit is not 1024:\n%s", limits)
	}
	other := httpClientFrom("127.0.0.2")
	testutil.Eventually(t, 30*time.Second, "leader", func() error {
		l, err := getOK(other, "http://"+p.HTTPAddr()+"/v1/status/leader")
		if err == nil && strings.TrimSpace(l) == `""` {
			err = errors.New("no leader yet")
		}
		return err
	})

	const flood = 1100
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, addr := range []string{p.HTTPAddr(), p.RPCAddr(), p.DNSAddr()} {
		for i := range flood {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("flood connection %d to %s: %v", i, addr, err)
			}
			held = append(held, c)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent holds %d fds with %d flood connections open", len(fds), len(held))

	// The HTTP API and the server port still serve another client.
	if _, err := getOK(other, "http://"+p.HTTPAddr()+"/v1/status/leader"); err != nil {
		t.Fatalf("HTTP from 127.0.0.2 during the flood: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := rpc.Dial(ctx, p.RPCAddr(), rpc.DialOptions{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}})
	if err != nil {
		t.Fatalf("server port from 127.0.0.2 during the flood: %v", err)
	}
	defer s.Close()
	var leader string
	if err := s.Call(ctx, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, &leader); err != nil || leader == "" {
		t.Fatalf("RPC from 127.0.0.2 during the flood: %q %v", leader, err)
	}
	// DNS over TCP too.
	dc := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	q := new(dns.Msg)
	q.SetQuestion("consul.service.consul.", dns.TypeA)
	ans, _, err := dc.Exchange(q, p.DNSAddr())
	if err != nil || ans.Rcode != dns.RcodeSuccess || len(ans.Answer) == 0 {
		t.Fatalf("DNS over TCP from 127.0.0.2 during the flood: %v %v", ans, err)
	}
	other2 := httpClientFrom("127.0.0.2")
	for _, m := range []string{"cairn_http_conns_refused_total", "cairn_rpc_conns_refused_total", "cairn_dns_tcp_conns_refused_total"} {
		if v := metric(t, other2, p.HTTPAddr(), m+`{reason="per_client"}`); v == "" || v == "0" {
			t.Errorf("%s{reason=per_client} = %q during a one-client flood", m, v)
		}
	}
	if strings.Contains(p.Log(), "too many open files") {
		t.Fatalf("agent ran out of file descriptors:\n%s", p.Log())
	}
}
