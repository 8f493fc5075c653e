package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	agenthttp "github.com/cairnd/cairn/agent/http"
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
