package ui_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairnd/cairn/agent/agenttest"
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
