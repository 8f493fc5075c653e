package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// newSession creates a session on the agent at addr, waiting until its
// node is registered with serfHealth passing (sessions need it).
func newSession(t *testing.T, addr string) string {
	t.Helper()
	api := newAPIClient(&Globals{HTTPAddr: addr})
	var id string
	testutil.Eventually(t, 30*time.Second, "a session", func() error {
		b, _, err := api.do(context.Background(), http.MethodPut, "/v1/session/create", nil, bytes.NewReader([]byte(`{"LockDelay":"1ms"}`)))
		if err != nil {
			return err
		}
		var out struct{ ID string }
		if err := json.Unmarshal(b, &out); err != nil {
			return err
		}
		id = out.ID
		return nil
	})
	return id
}

var sessionRE = regexp.MustCompile(`(Session +)[0-9a-f-]{36}`)

func TestKVPutLockCommands(t *testing.T) {
	a := devAgent(t)
	s1, s2 := newSession(t, a.HTTPAddr), newSession(t, a.HTTPAddr)
	for _, s := range []struct {
		name string
		cmd  runner
		want result
	}{
		{"acquire without session", &KVPutCmd{Key: "l", Acquire: true}, result{stderr: "Error! Missing --session (needed by --acquire and --release)\n", code: 1}},
		{"session without verb", &KVPutCmd{Key: "l", Session: s1}, result{stderr: "Error! --session needs --acquire or --release\n", code: 1}},
		{"acquire and release", &KVPutCmd{Key: "l", Session: s1, Acquire: true, Release: true}, result{stderr: "Error! Use only one of --acquire, --release and --cas\n", code: 1}},
		{"acquire", &KVPutCmd{Key: "l", Value: "mine", Session: s1, Acquire: true}, result{stdout: "Success! Lock acquired on: l\n"}},
		{"acquire held", &KVPutCmd{Key: "l", Session: s2, Acquire: true}, result{stderr: "Error! Did not acquire lock on l\n", code: 1}},
		{"release by other", &KVPutCmd{Key: "l", Session: s2, Release: true}, result{stderr: "Error! Did not release lock on l\n", code: 1}},
		{"unknown session", &KVPutCmd{Key: "l", Session: "nope", Acquire: true}, result{stderr: "~^Error! Failed writing data: Unexpected response code: 500 .*invalid session", code: 1}},
	} {
		check(t, s.name, a.HTTPAddr, s.cmd, "", s.want)
	}
	got := check(t, "get detailed", a.HTTPAddr, &KVGetCmd{Key: "l", Detailed: true}, "", result{stdout: "~Session +" + s1 + "\n"})
	golden(t, "kv_get_detailed_locked", sessionRE.ReplaceAllString(indexRE.ReplaceAllString(got.stdout, "$1${2}N"), "${1}SESSION"))
	check(t, "release", a.HTTPAddr, &KVPutCmd{Key: "l", Value: "free", Session: s1, Release: true}, "", result{stdout: "Success! Lock released on: l\n"})
	check(t, "get detailed released", a.HTTPAddr, &KVGetCmd{Key: "l", Detailed: true}, "", result{stdout: "~LockIndex +1\n(.|\n)*Session +-\n"})
}

// TestLockSemaphore: three `cairn lock -n 2` on one prefix: two children
// run, the third waits until a slot frees.
func TestLockSemaphore(t *testing.T) {
	a := devAgent(t)
	newSession(t, a.HTTPAddr) // the node is registered
	dir := t.TempDir()
	record, stop := filepath.Join(dir, "record"), filepath.Join(dir, "stop")
	read := func() string {
		b, _ := os.ReadFile(record)
		return string(b)
	}
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			child := fmt.Sprintf("echo start >> %[1]s; while [ ! -f %[2]s ]; do sleep 0.05; done; echo end >> %[1]s", record, stop)
			results[i] = run(t, a.HTTPAddr, &LockCmd{Limit: 2, Shell: true, MonitorRetry: 3, Prefix: "sem/job", Command: []string{child}}, "")
		}()
	}
	testutil.Eventually(t, 30*time.Second, "two children running", func() error {
		if n := strings.Count(read(), "start"); n != 2 {
			return fmt.Errorf("%d started", n)
		}
		return nil
	})
	select {
	case <-time.After(time.Second): // the window in which the third must not start
	case <-func() chan struct{} { ch := make(chan struct{}); go func() { wg.Wait(); close(ch) }(); return ch }():
		t.Fatalf("a lock exited while the children ran: %+v", results)
	}
	if n := strings.Count(read(), "start"); n != 2 {
		t.Fatalf("%d children run with -n 2:\n%s", n, read())
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("lock %d: %s", i, r)
		}
	}
	running, most := 0, 0
	for _, line := range strings.Fields(read()) {
		if line == "start" {
			running++
		} else {
			running--
		}
		most = max(most, running)
	}
	if most > 2 || strings.Count(read(), "start") != 3 {
		t.Fatalf("record:\n%s", read())
	}
}

// TestLockTimeout: a second `cairn lock` with -timeout gives up while the
// first holds the lock, and its child never runs; bad arguments fail.
func TestLockTimeout(t *testing.T) {
	a := devAgent(t)
	newSession(t, a.HTTPAddr) // the node is registered
	dir := t.TempDir()
	stop, ran := filepath.Join(dir, "stop"), filepath.Join(dir, "ran")
	first := make(chan result, 1)
	go func() {
		first <- run(t, a.HTTPAddr, &LockCmd{Limit: 1, Shell: true, Prefix: "to/job",
			Command: []string{fmt.Sprintf("touch %s.first; while [ ! -f %s ]; do sleep 0.05; done", ran, stop)}}, "")
	}()
	testutil.Eventually(t, 30*time.Second, "the first child", func() error {
		_, err := os.Stat(ran + ".first")
		return err
	})
	check(t, "timeout", a.HTTPAddr, &LockCmd{Limit: 1, Shell: true, Timeout: 300 * time.Millisecond, Prefix: "to/job",
		Command: []string{"touch " + ran}}, "", result{stderr: "Lock acquisition failed: timed out after 300ms\n", code: 1})
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the child of a lock that timed out ran")
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.code != 0 {
		t.Fatalf("first lock: %s", r)
	}
	for _, c := range []struct {
		name string
		cmd  *LockCmd
		want string
	}{
		{"no prefix", &LockCmd{Limit: 1, Prefix: "/", Command: []string{"true"}}, "Error! Missing PREFIX argument\n"},
		{"no command", &LockCmd{Limit: 1, Prefix: "p"}, "Error! Missing command to run\n"},
		{"bad n", &LockCmd{Limit: 0, Prefix: "p", Command: []string{"true"}}, "Error! -n must be at least 1\n"},
		{"child fails", &LockCmd{Limit: 1, Shell: true, ChildExitCode: true, Prefix: "p", Command: []string{"exit 3"}}, "Child exited with an error: exit status 3\n"},
	} {
		code := 1
		if c.name == "child fails" {
			code = 2
		}
		check(t, c.name, a.HTTPAddr, c.cmd, "", result{stderr: c.want, code: code})
	}
}
