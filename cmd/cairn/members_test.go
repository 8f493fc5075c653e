package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/cluster/structs"
)

func membersAgent(t *testing.T) *apiClient {
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
	return newAPIClient(&Globals{HTTPAddr: srv.URL})
}

func TestMembersOutput(t *testing.T) {
	api := membersAgent(t)
	cases := []struct {
		cmd  MembersCmd
		want string
		code int
	}{
		{MembersCmd{Status: ".*"}, `Node      Address         Status  Type    Build  Protocol  DC
server-1  10.0.0.1:8301   alive   server  0.1.0  2         dc1
web-1     10.0.0.11:8301  left    client  0.1.0  2         dc1
web-2     10.0.0.12:8301  failed  client  0.1.0  2         dc1
`, 0},
		{MembersCmd{Status: "failed", Detailed: true}, `Node   Address         Status  Tags
web-2  10.0.0.12:8301  failed  build=0.1.0:abc,dc=dc1,id=x,role=node,vsn=2
`, 0},
		{MembersCmd{Status: "leaving"}, "", 2},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		err := c.cmd.run(context.Background(), api, &out, &errOut)
		code := 0
		if ec, ok := err.(exitCode); ok {
			code = int(ec)
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || (c.want != "" && out.String() != c.want) {
			t.Errorf("members %+v: exit %d\n%s\nwant exit %d\n%s", c.cmd, code, out.String(), c.code, c.want)
		}
	}
}

func TestExecCollect(t *testing.T) {
	root := "_rexec/s1/"
	ent := func(k, v string) structs.DirEntry { return structs.DirEntry{Key: root + k, Value: []byte(v)} }
	var c ExecCmd
	nodes := map[string]*execNode{}
	var out bytes.Buffer
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
	if strings.Count(out.String(), "one") != 1 {
		t.Fatal("output printed twice")
	}
}
