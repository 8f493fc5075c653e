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

// TestJoinLeaveForceLeave joins two dev servers' WAN pools (dc1, dc2)
// through `cairn join --wan`, then makes dc2's leave with `cairn leave`:
// its agent.Run must return, and dc1 must see it as left.
func TestJoinLeaveForceLeave(t *testing.T) {
	wan, name, dc := 0, "cli-dc2", "dc2"
	dc1 := startAgent(t, AgentCmd{Dev: true, SerfWANPort: &wan})
	dc2 := startAgent(t, AgentCmd{Dev: true, SerfWANPort: &wan, Node: &name, Datacenter: &dc})

	check(t, "join nothing", dc1.HTTPAddr, &JoinCmd{Addrs: []string{unreachable}}, "", result{
		stderr: "~^Error joining address '127.0.0.1:1': Unexpected response code: 500 .*\nFailed to join any nodes.\n$", code: 1})
	check(t, "join", dc1.HTTPAddr, &JoinCmd{WAN: true, Addrs: []string{dc2.SerfWANAddr}}, "", result{
		stdout: "Successfully joined cluster by contacting 1 nodes.\n"})
	check(t, "join agent down", unreachable, &JoinCmd{Addrs: []string{dc2.SerfAddr}}, "", result{
		stderr: "~^Error joining address .*connection refused\nFailed to join any nodes.\n$", code: 1})
	members := func(status, want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "dc1 sees "+want+" "+status, func() error {
			got := run(t, dc1.HTTPAddr, &MembersCmd{WAN: true, Status: status}, "")
			if !strings.Contains(got.stdout, want) {
				return fmt.Errorf("members --wan: %s", got)
			}
			return nil
		})
	}
	members("alive", "cli-dc2.dc2")

	// Forcing out a member that is alive or unknown is a no-op, as serf's.
	check(t, "force-leave unknown", dc1.HTTPAddr, &ForceLeaveCmd{Node: "nobody"}, "", result{})
	check(t, "force-leave bad name", dc1.HTTPAddr, &ForceLeaveCmd{Node: "bad\x01name"}, "", result{
		stderr: "~^Error force leaving: Unexpected response code: 40", code: 1})
	check(t, "force-leave agent down", unreachable, &ForceLeaveCmd{Node: "x", Prune: true}, "", result{
		stderr: "~^Error force leaving: Error connecting", code: 1})

	check(t, "leave", dc2.HTTPAddr, &LeaveCmd{}, "", result{stdout: "Graceful leave complete\n"})
	select {
	case err := <-dc2.done:
		dc2.done <- err
		if err != nil {
			t.Fatalf("dc2 agent after leave: %v", err)
		}
	case <-time.After(agentDownTimeout):
		t.Fatal("dc2 agent still running after cairn leave")
	}
	members("left", "cli-dc2.dc2")
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
