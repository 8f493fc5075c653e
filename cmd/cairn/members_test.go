package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// membersAgent serves a member list with every status a real pool takes
// minutes to show (left, failed): the layout, not the API, is the subject.
func membersAgent(t *testing.T) string {
	members := []agenthttp.Member{
		{Name: "web-2", Addr: "10.0.0.12", Port: 8301, Status: agenthttp.MemberStatusFailed,
			Tags: map[string]string{"role": "node", "dc": "dc1", "build": "0.1.0:abc", "vsn": "2", "id": "x"}},
		{Name: "server-1", Addr: "10.0.0.1", Port: 8301, Status: agenthttp.MemberStatusAlive,
			Tags: map[string]string{"role": "consul", "dc": "dc1", "build": "0.1.0", "port": "8300"}},
		{Name: "web-1", Addr: "10.0.0.11", Port: 8301, Status: agenthttp.MemberStatusLeft,
			Tags: map[string]string{"role": "node", "dc": "dc1", "build": "0.1.0", "vsn": "2"}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(members)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestMembersLayout(t *testing.T) {
	addr := membersAgent(t)
	cases := []struct {
		name string
		cmd  MembersCmd
		code int
	}{
		{"members_all", MembersCmd{Status: ".*"}, 0},
		{"members_failed_detailed", MembersCmd{Status: "failed", Detailed: true}, 0},
		{"members_alive_or_left", MembersCmd{Status: "alive|left"}, 0},
		// Consul exits 2 when the filter leaves nothing, and prints nothing.
		{"members_none", MembersCmd{Status: "leaving"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(t, addr, &c.cmd, "")
			if got.code != c.code || got.stderr != "" {
				t.Fatalf("got %s, want exit %d and no stderr", got, c.code)
			}
			golden(t, c.name, got.stdout)
		})
	}
}

// portRE finds the ports a test agent was given; maskPorts keeps their
// width (five digits, as every port tests get) so columns stay aligned.
var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

func maskPorts(s string) string {
	return portRE.ReplaceAllStringFunc(s, func(m string) string {
		return "127.0.0.1:" + strings.Repeat("P", len(m)-len("127.0.0.1:"))
	})
}

func TestMembersAgainstAgent(t *testing.T) {
	a := devAgent(t)
	got := check(t, "members", a.HTTPAddr, &MembersCmd{Status: ".*"}, "", result{stdout: "~cli-test", code: 0})
	golden(t, "members_dev", maskPorts(got.stdout))

	for _, c := range []struct {
		name string
		addr string
		cmd  MembersCmd
		want result
	}{
		{"no match", a.HTTPAddr, MembersCmd{Status: "failed"}, result{code: 2}},
		{"wan pool disabled: empty", a.HTTPAddr, MembersCmd{Status: ".*", WAN: true}, result{code: 2}},
		{"bad regexp", a.HTTPAddr, MembersCmd{Status: "("}, result{stderr: "Failed to compile status regexp: error parsing regexp: missing closing ): `(`\n", code: 1}},
		{"agent down", unreachable, MembersCmd{Status: ".*"}, result{stderr: "~^Error retrieving members: Error connecting to Cairn agent: .*connection refused\n$", code: 1}},
	} {
		check(t, c.name, c.addr, &c.cmd, "", c.want)
	}
}

// TestJoinLeaveForceLeave joins a client agent to a dev server through
// `cairn join`, then makes it leave with `cairn leave`: the client's
// agent.Run must return, and the server must see it as left.
func TestJoinLeaveForceLeave(t *testing.T) {
	srv := devAgent(t)
	no, name := false, "cli-client"
	cl := startAgent(t, AgentCmd{Server: &no, Node: &name})

	check(t, "join nothing", cl.HTTPAddr, &JoinCmd{Addrs: []string{unreachable}}, "", result{
		stderr: "~^Error joining address '127.0.0.1:1': Unexpected response code: 500 .*\nFailed to join any nodes.\n$", code: 1})
	check(t, "join", cl.HTTPAddr, &JoinCmd{Addrs: []string{srv.SerfAddr}}, "", result{
		stdout: "Successfully joined cluster by contacting 1 nodes.\n"})
	check(t, "join agent down", unreachable, &JoinCmd{Addrs: []string{srv.SerfAddr}}, "", result{
		stderr: "~^Error joining address .*connection refused\nFailed to join any nodes.\n$", code: 1})
	testutil.Eventually(t, 10*time.Second, "server sees the client alive", func() error {
		if got := run(t, srv.HTTPAddr, &MembersCmd{Status: "alive"}, ""); !strings.Contains(got.stdout, "cli-client") {
			return fmt.Errorf("members: %s", got)
		}
		return nil
	})

	// Forcing out a member that is alive or unknown is a no-op, as serf's.
	check(t, "force-leave unknown", srv.HTTPAddr, &ForceLeaveCmd{Node: "nobody"}, "", result{})
	check(t, "force-leave bad name", srv.HTTPAddr, &ForceLeaveCmd{Node: "bad\x01name"}, "", result{
		stderr: "~^Error force leaving: Unexpected response code: 40", code: 1})
	check(t, "force-leave agent down", unreachable, &ForceLeaveCmd{Node: "x", Prune: true}, "", result{
		stderr: "~^Error force leaving: Error connecting", code: 1})

	check(t, "leave", cl.HTTPAddr, &LeaveCmd{}, "", result{stdout: "Graceful leave complete\n"})
	select {
	case err := <-cl.done:
		cl.done <- err
		if err != nil {
			t.Fatalf("client agent after leave: %v", err)
		}
	case <-time.After(agentDownTimeout):
		t.Fatal("client agent still running after cairn leave")
	}
	testutil.Eventually(t, 10*time.Second, "server sees the client left", func() error {
		if got := run(t, srv.HTTPAddr, &MembersCmd{Status: "left"}, ""); !strings.Contains(got.stdout, "cli-client") {
			return fmt.Errorf("members: %s", got)
		}
		return nil
	})
	check(t, "leave agent down", unreachable, &LeaveCmd{}, "", result{stderr: "~^Error leaving: Error connecting", code: 1})
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
