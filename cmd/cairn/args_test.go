package main

import (
	"slices"
	"strings"
	"testing"
)

func TestConsulArgs(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"event -name deploy", "event --name deploy"},
		{"event -name=deploy -node web.* payload", "event --name=deploy --node web.* payload"},
		{"members -detailed -wan", "members --detailed --wan"},
		{"members -status=failed", "members --status=failed"},
		{"-http-addr 127.0.0.1:1 members", "--http-addr 127.0.0.1:1 members"},
		{"members -http-addr=127.0.0.1:1", "members --http-addr=127.0.0.1:1"},
		{"force-leave -prune web1", "force-leave --prune web1"},
		{"agent -server -bootstrap-expect 3 -data-dir /tmp/x -node s1", "agent --server --bootstrap-expect 3 --data-dir /tmp/x --node s1"},
		{"agent -retry-join=10.0.0.1 -encrypt abc=", "agent --retry-join=10.0.0.1 --encrypt abc="},
		// Short flags, unknown words and negative numbers stay.
		{"members -h", "members -h"},
		{"members -bogus", "members -bogus"},
		{"event --name x -5", "event --name x -5"},
		// A flag's value may start with a dash; it is not a flag.
		{"event -name -node", "event --name -node"},
		// exec's command is passed through untouched after the first word.
		{"exec -node web -wait 5s uname -node", "exec --node web --wait 5s uname -node"},
		{"exec uname -n", "exec uname -n"},
		{"watch -type key -key foo /bin/handler -prefix", "watch --type key --key foo /bin/handler -prefix"},
		// After "--" nothing is rewritten.
		{"event -name x -- -node", "event --name x -- -node"},
		// Flags of another command are not known here.
		{"keygen -detailed", "keygen -detailed"},
		{"operator raft list-peers -stale", "operator raft list-peers --stale"},
		{"keyring -install=k -list", "keyring --install=k --list"},
	}
	for _, c := range cases {
		got := strings.Join(consulArgs(strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("consulArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestConsulArgsEmpty(t *testing.T) {
	if got := consulArgs(nil); len(got) != 0 {
		t.Fatalf("consulArgs(nil) = %v", got)
	}
	in := []string{"version"}
	if got := consulArgs(in); !slices.Equal(got, in) {
		t.Fatalf("consulArgs(%v) = %v", in, got)
	}
}
