package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// configDir writes one JSON config file and returns its directory.
func configDir(t *testing.T, json string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvent(t *testing.T) {
	a := devAgent(t)
	for _, c := range []struct {
		name string
		addr string
		cmd  EventCmd
		want result
	}{
		{"fire", a.HTTPAddr, EventCmd{Name: "deploy", Payload: "v2"}, result{stdout: "~^Event ID: [0-9a-f-]{36}\n$"}},
		{"fire filtered", a.HTTPAddr, EventCmd{Name: "deploy", Node: "cli-.*", Service: "web", Tag: "v1"}, result{stdout: "~^Event ID: [0-9a-f-]{36}\n$"}},
		{"tag without service", a.HTTPAddr, EventCmd{Name: "deploy", Tag: "v1"}, result{stderr: "Cannot provide tag filter without service filter.\n", code: 1}},
		{"bad filter", a.HTTPAddr, EventCmd{Name: "deploy", Node: "("}, result{stderr: "~^Error firing event: Unexpected response code: 400", code: 1}},
		{"agent down", unreachable, EventCmd{Name: "deploy"}, result{stderr: "~^Error firing event: Error connecting", code: 1}},
	} {
		check(t, c.name, c.addr, &c.cmd, "", c.want)
	}
	// The fired event reached the agent's event list (the watch's view).
	testutil.Eventually(t, 10*time.Second, "deploy in the event list", func() error {
		got := run(t, a.HTTPAddr, &WatchCmd{Type: "event", Name: "deploy"}, "")
		var evs []struct {
			Name    string
			Payload []byte
		}
		if err := json.Unmarshal([]byte(got.stdout), &evs); err != nil || got.code != 0 {
			return fmt.Errorf("%s: %v", got, err)
		}
		if len(evs) == 0 || evs[0].Name != "deploy" || string(evs[0].Payload) != "v2" {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})
}

// execWait is exec's --wait in tests: the quiet period after every node
// finished (the agent is local, results land at once).
const execWait = 100 * time.Millisecond

// TestExec runs commands through remote exec on a dev agent that allows
// it, and on one that refuses (the default): `cairn exec` exits 2 when a
// node failed or refused, as Consul's.
func TestExec(t *testing.T) {
	on := startAgent(t, AgentCmd{Dev: true}, configDir(t, `{"disable_remote_exec": false}`))
	off := devAgent(t)
	exec := func(cmd ...string) *ExecCmd {
		return &ExecCmd{Command: cmd, Prefix: "_rexec", Wait: execWait, Timeout: 30 * time.Second}
	}
	for _, c := range []struct {
		name  string
		addr  string
		cmd   *ExecCmd
		stdin string
		want  result
	}{
		{"success", on.HTTPAddr, exec("echo", "hello;", "echo", "world"), "", result{
			stdout: "    cli-test: hello\n    cli-test: world\n==> cli-test: finished with exit code 0\n1 / 1 node(s) completed / acknowledged\n"}},
		{"node fails", on.HTTPAddr, exec("exit 3"), "", result{
			stdout: "==> cli-test: finished with exit code 3\n1 / 1 node(s) completed / acknowledged\n", code: 2}},
		{"script from stdin", on.HTTPAddr, exec("-"), "echo from-stdin\n", result{
			stdout: "    cli-test: from-stdin\n==> cli-test: finished with exit code 0\n1 / 1 node(s) completed / acknowledged\n"}},
		{"no node matches", on.HTTPAddr, &ExecCmd{Command: []string{"true"}, Node: "^nobody$", Prefix: "_rexec", Wait: execWait, Timeout: 30 * time.Second}, "", result{
			stdout: "0 / 0 node(s) completed / acknowledged\n"}},
		{"refused", off.HTTPAddr, exec("true"), "", result{
			stdout: "==> cli-test: refused: remote exec is disabled on cli-test (disable_remote_exec)\n1 / 1 node(s) completed / acknowledged\n", code: 2}},
		{"tag without service", on.HTTPAddr, &ExecCmd{Command: []string{"true"}, Tag: "x"}, "", result{
			stderr: "Cannot provide tag filter without service filter.\n", code: 1}},
		{"agent down", unreachable, exec("true"), "", result{
			stderr: "~^Failed to clean up job _rexec/.*connection refused\nFailed to create job file: Error connecting", code: 1}},
	} {
		check(t, c.name, c.addr, c.cmd, c.stdin, c.want)
	}
	// Every job's KV tree was deleted by the command's deferred clean-up.
	for _, a := range []*testAgent{on, off} {
		check(t, "job trees cleaned", a.HTTPAddr, &KVGetCmd{Key: "_rexec/", Recurse: true}, "", result{})
	}
}

func TestExecCollect(t *testing.T) {
	root := "_rexec/s1/"
	ent := func(k, v string) structs.DirEntry { return structs.DirEntry{Key: root + k, Value: []byte(v)} }
	var c ExecCmd
	nodes := map[string]*execNode{}
	var out strings.Builder
	first := []structs.DirEntry{ent("job", "{}"), ent("a/ack", ""), ent("b/ack", ""), ent("a/out/00000", "one\ntwo\n")}
	if !c.collect(root, first, nodes, &out) || allFinished(nodes) {
		t.Fatal("first batch: want a change and unfinished nodes")
	}
	second := append(first, ent("a/exit", "0"), ent("b/refused", "remote exec is disabled on b"),
		ent("b/out/00000", "remote exec is disabled on b\n"), ent("b/exit", "126"))
	if !c.collect(root, second, nodes, &out) || !allFinished(nodes) {
		t.Fatal("second batch: want a change and every node finished")
	}
	if c.collect(root, second, nodes, &out) {
		t.Fatal("the same batch again reported a change")
	}
	want := `    a: one
    a: two
==> a: finished with exit code 0
==> b: refused: remote exec is disabled on b
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}
