package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// TestMonitor streams an agent's log through `cairn monitor`: a reload's
// log line shows up, debug lines do not, and an interrupt ends it with
// exit 0. Run ends only on SIGINT/SIGTERM, so the test drives run with
// its own context, the one Run derives from the signals.
func TestMonitor(t *testing.T) {
	a := devAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- (&MonitorCmd{LogLevel: "info"}).run(ctx, newAPIClient(&Globals{HTTPAddr: a.HTTPAddr}), &stdout)
	}()
	// The subscription starts when the agent handles the request: reload
	// until a reload's line arrives.
	testutil.Eventually(t, 10*time.Second, "a reload logged through monitor", func() error {
		if got := run(t, a.HTTPAddr, &ReloadCmd{}, ""); got.code != 0 {
			return fmt.Errorf("reload: %s", got)
		}
		if !strings.Contains(stdout.String(), "configuration reloaded") {
			return fmt.Errorf("monitor output so far: %q", stdout.String())
		}
		return nil
	})
	if strings.Contains(stdout.String(), "DEBUG") {
		t.Errorf("--log-level info streamed debug lines:\n%s", stdout.String())
	}
	cancel()
	select {
	case err := <-done:
		if code := exitStatus(err, io.Discard); code != 0 {
			t.Fatalf("monitor after interrupt: exit %d (%v), want 0", code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("monitor still running after interrupt")
	}
}

// TestMonitorRemoteEnd: when the agent ends the stream, monitor says so
// in Consul's words and exits 1. The agent here is a stub that sends one
// line and hangs up: the subject is the CLI's handling of the end.
func TestMonitorRemoteEnd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agent/monitor" || r.URL.Query().Get("loglevel") != "warn" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "2026-01-01T00:00:00Z\tWARN\tlast words\n")
	}))
	defer srv.Close()
	check(t, "remote end", srv.URL, &MonitorCmd{LogLevel: "warn"}, "", result{
		stdout: "2026-01-01T00:00:00Z\tWARN\tlast words\n",
		stderr: "Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.\n", code: 1})
}

func TestMonitorFailures(t *testing.T) {
	a := devAgent(t)
	check(t, "bad level", a.HTTPAddr, &MonitorCmd{LogLevel: "loud"}, "", result{
		stderr: "~^Error starting monitor: Unexpected response code: 400", code: 1})
	check(t, "agent down", unreachable, &MonitorCmd{LogLevel: "info"}, "", result{
		stderr: "~^Error starting monitor: Error connecting", code: 1})
}
