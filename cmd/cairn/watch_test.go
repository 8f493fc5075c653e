package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// watchTimeout bounds a handler seeing a change (one blocking query).
const watchTimeout = 15 * time.Second

// TestWatchOnce covers watch without a handler: it prints the view once,
// as Consul's, with the layout pinned by golden files.
func TestWatchOnce(t *testing.T) {
	a := devAgent(t)
	check(t, "put", a.HTTPAddr, &KVPutCmd{Key: "cfg/a", Value: "1", Flags: 7}, "", result{stdout: "Success! Data written to: cfg/a\n"})
	register(t, a, `{"ID": "web1", "Name": "web", "Tags": ["v1"], "Port": 80}`)
	testutil.Eventually(t, syncTimeout, "web in the catalog", func() error {
		if got := run(t, a.HTTPAddr, &WatchCmd{Type: "services"}, ""); !strings.Contains(got.stdout, `"web"`) {
			return fmt.Errorf("services: %s", got)
		}
		return nil
	})
	indexes := regexp.MustCompile(`"(CreateIndex|ModifyIndex)": \d+`)
	for _, c := range []struct {
		golden string
		cmd    WatchCmd
	}{
		{"watch_key", WatchCmd{Type: "key", Key: "cfg/a"}},
		{"watch_key_absent", WatchCmd{Type: "key", Key: "cfg/none"}},
		{"watch_keyprefix", WatchCmd{Type: "keyprefix", Prefix: "cfg/"}},
		{"watch_services", WatchCmd{Type: "services", Stale: true}},
	} {
		got := check(t, c.golden, a.HTTPAddr, &c.cmd, "", result{stdout: "~(?s)^.+\n$"})
		golden(t, c.golden, indexes.ReplaceAllString(got.stdout, `"$1": N`))
	}
	for _, c := range []struct {
		name string
		addr string
		cmd  WatchCmd
		want result
	}{
		{"key without --key", a.HTTPAddr, WatchCmd{Type: "key"}, result{stderr: "Error: --key is required for type key\n", code: 1}},
		{"keyprefix without --prefix", a.HTTPAddr, WatchCmd{Type: "keyprefix"}, result{stderr: "Error: --prefix is required for type keyprefix\n", code: 1}},
		{"service without --service", a.HTTPAddr, WatchCmd{Type: "service"}, result{stderr: "Error: --service is required for type service\n", code: 1}},
		{"other dc", a.HTTPAddr, WatchCmd{Type: "nodes", Datacenter: "dc9"}, result{stderr: "~^Error querying Cairn agent: Unexpected response code: 5", code: 1}},
		{"agent down", unreachable, WatchCmd{Type: "services"}, result{stderr: "~^Error querying Cairn agent: Error connecting", code: 1}},
	} {
		check(t, c.name, c.addr, &c.cmd, "", c.want)
	}
}

// TestWatchHandler runs a handler on the first view and on each change.
// Run ends only on SIGINT/SIGTERM, so the test drives run with its own
// context, the one Run derives from the signals.
func TestWatchHandler(t *testing.T) {
	a := devAgent(t)
	out := filepath.Join(t.TempDir(), "views")
	check(t, "put", a.HTTPAddr, &KVPutCmd{Key: "w", Value: "one"}, "", result{stdout: "Success! Data written to: w\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	cmd := &WatchCmd{Type: "key", Key: "w", Handler: []string{`cat >> "$VIEWS"; echo "index $CONSUL_INDEX"`}}
	t.Setenv("VIEWS", out)
	go func() { done <- cmd.run(ctx, newAPIClient(&Globals{HTTPAddr: a.HTTPAddr}), &stdout, &stderr) }()
	// views waits for the handler to have been handed value, then checks
	// that it ran exactly want times: runs are sequential, so none is in
	// flight behind the one that wrote value.
	views := func(want int, value string) {
		t.Helper()
		var b []byte
		testutil.Eventually(t, watchTimeout, "a view with "+value, func() error {
			b, _ = os.ReadFile(out)
			if !strings.Contains(string(b), `"Value": "`+value+`"`) {
				return fmt.Errorf("views so far: %s", b)
			}
			return nil
		})
		if n := strings.Count(string(b), `"Key": "w"`); n != want {
			t.Fatalf("handler ran %d times, want %d:\n%s", n, want, b)
		}
	}
	views(1, "b25l") // "one"
	check(t, "put two", a.HTTPAddr, &KVPutCmd{Key: "w", Value: "two"}, "", result{stdout: "Success! Data written to: w\n"})
	views(2, "dHdv")
	// A write elsewhere may wake the query but leaves the view as it was:
	// no handler run, so the next change is the third.
	check(t, "put other key", a.HTTPAddr, &KVPutCmd{Key: "other", Value: "x"}, "", result{stdout: "Success! Data written to: other\n"})
	check(t, "put three", a.HTTPAddr, &KVPutCmd{Key: "w", Value: "three"}, "", result{stdout: "Success! Data written to: w\n"})
	views(3, "dGhyZWU=")
	indexLines := regexp.MustCompile(`^(index [1-9]\d*\n){3}$`)
	testutil.Eventually(t, watchTimeout, "the third handler run to finish", func() error {
		if !indexLines.MatchString(stdout.String()) {
			return fmt.Errorf("handler stdout %q", stdout.String())
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch after interrupt: %v", err)
		}
	case <-time.After(watchTimeout):
		t.Fatal("watch did not stop on interrupt")
	}
	if !indexLines.MatchString(stdout.String()) || stderr.String() != "" {
		t.Errorf("handler stdout %q (want three CONSUL_INDEX lines), stderr %q", stdout.String(), stderr.String())
	}
}
