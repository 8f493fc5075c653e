package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestServingE2E: a plain agent serves no UI (and `cairn ui` says so);
// --ui serves it, "/" redirects there, and `cairn ui --print-only`
// prints its URL.
func TestServingE2E(t *testing.T) {
	bin := agenttest.Binary(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	cairnUI := func(addr string) (string, error) {
		out, err := exec.Command(bin, "ui", "--print-only", "--http-addr", addr).CombinedOutput()
		return string(out), err
	}

	off := agenttest.StartAgent(t, bin, "plain")
	if code, _ := get("http://" + off.HTTPAddr() + "/ui/"); code != http.StatusNotFound {
		t.Errorf("UI off: /ui/ answered %d, want 404", code)
	}
	if code, _ := get("http://" + off.HTTPAddr() + "/"); code != http.StatusNotFound {
		t.Errorf("UI off: / answered %d, want 404", code)
	}
	if out, err := cairnUI(off.HTTPAddr()); err == nil || !strings.Contains(out, "does not serve the UI") {
		t.Errorf("cairn ui against an agent without UI: %v\n%s", err, out)
	}

	on := agenttest.StartAgent(t, bin, "withui", "--ui")
	base := "http://" + on.HTTPAddr()
	if code, loc := get(base + "/"); code != http.StatusFound || loc != "/ui/" {
		t.Errorf("/ answered %d Location %q, want 302 /ui/", code, loc)
	}
	if code, loc := get(base + "/ui/"); code != http.StatusFound || loc != "/ui/services" {
		t.Errorf("/ui/ answered %d Location %q, want 302 /ui/services", code, loc)
	}
	if code, _ := get(base + "/ui/cluster"); code != http.StatusOK {
		t.Errorf("/ui/cluster answered %d", code)
	}
	if out, err := cairnUI(on.HTTPAddr()); err != nil || out != base+"/ui/\n" {
		t.Errorf("cairn ui: %v %q, want %q", err, out, base+"/ui/\n")
	}
}

// TestClientAgentPageE2E: a client agent's "This agent" page resolves
// through the client's own DNS and shows its cache figures moving.
func TestClientAgentPageE2E(t *testing.T) {
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	srv := agenttest.StartAgent(t, bin, "srv", "--dev")
	cl := agenttest.StartAgent(t, bin, "cl", "--ui", "--retry-join", srv.SerfAddr())
	page := func(q string) string {
		t.Helper()
		resp, err := http.Get("http://" + cl.HTTPAddr() + "/ui/agent" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The servers' own service answers once the client found a server.
	testutil.Eventually(t, 60*time.Second, "client resolves consul.service.consul", func() error {
		if p := page("?name=consul.service.consul&type=A"); !strings.Contains(p, "consul.service.consul.\t0\tIN\tA\t127.0.0.1") {
			return fmt.Errorf("no A record yet")
		}
		return nil
	})
	p := page("")
	for _, want := range []string{"<dd>client</dd>", `<th scope="row">Misses</th><td class="num">`, "cairn_cache_watched_keys"} {
		if !strings.Contains(p, want) {
			t.Errorf("client agent page lacks %q", want)
		}
	}
	if strings.Contains(p, "keeps no client cache") {
		t.Errorf("client agent page says it has no cache")
	}
	misses := regexp.MustCompile(`<th scope="row">Misses</th><td class="num">(\d+)</td>`).FindStringSubmatch(p)
	if misses == nil || misses[1] == "0" {
		t.Errorf("cache misses %v after a lookup, want a count >= 1", misses)
	}
}
