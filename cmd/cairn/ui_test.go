package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUICmd: `cairn ui --print-only` prints the URL of an agent serving
// the UI and fails with a clear message when the agent does not serve it
// or is down.
func TestUICmd(t *testing.T) {
	on := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui/static/app.css" {
			http.NotFound(w, r)
		}
	}))
	defer on.Close()
	off := httptest.NewServer(http.NotFoundHandler())
	defer off.Close()
	addrOn, addrOff := strings.TrimPrefix(on.URL, "http://"), strings.TrimPrefix(off.URL, "http://")
	for _, tc := range []struct {
		name, addr string
		want       result
	}{
		{"ui on", addrOn, result{stdout: "http://" + addrOn + "/ui/\n"}},
		{"ui off", addrOff, result{code: 1, stderr: "~does not serve the UI: start it with --ui"}},
		{"agent down", unreachable, result{code: 1, stderr: "~Error connecting to Cairn agent"}},
	} {
		check(t, tc.name, tc.addr, &UICmd{PrintOnly: true}, "", tc.want)
	}
}

// TestBrowserCommand: the URL is opened only with a display and xdg-open.
func TestBrowserCommand(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/xdg-open", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		env  func(string) string
		look func(string) (string, error)
		want string
	}{
		{"no display", env(), found, ""},
		{"x11", env("DISPLAY", ":0"), found, "/usr/bin/xdg-open"},
		{"wayland", env("WAYLAND_DISPLAY", "wayland-0"), found, "/usr/bin/xdg-open"},
		{"no xdg-open", env("DISPLAY", ":0"), missing, ""},
	} {
		if got := browserCommand(tc.env, tc.look); got != tc.want {
			t.Errorf("%s: browserCommand = %q, want %q", tc.name, got, tc.want)
		}
	}
}
