package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
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
		// lock: -n is a short flag; the command after the prefix passes.
		{"lock -n 2 -timeout 5s -name job svc/leader ./run.sh -timeout", "lock -n 2 --timeout 5s --name job svc/leader ./run.sh -timeout"},
		{"kv put -acquire -session abc k v", "kv put --acquire --session abc k v"},
		{"kv put -release -session=abc k", "kv put --release --session=abc k"},
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

// TestLockFlagsParse: Consul's spellings of `consul lock` flags reach the
// command.
func TestLockFlagsParse(t *testing.T) {
	for _, tc := range []struct {
		args  string
		limit int
		cmd   []string
	}{
		{"lock -n 3 -timeout 2s pfx echo hi", 3, []string{"echo", "hi"}},
		{"lock -n=2 pfx ./job -n 5", 2, []string{"./job", "-n", "5"}},
		{"lock pfx sh -c true", 1, []string{"sh", "-c", "true"}},
	} {
		var cli CLI
		p, err := kong.New(&cli, kong.Name("cairn"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(consulArgs(strings.Fields(tc.args))); err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if cli.Lock.Limit != tc.limit || cli.Lock.Prefix != "pfx" || !slices.Equal(cli.Lock.Command, tc.cmd) {
			t.Errorf("%s: parsed %+v", tc.args, cli.Lock)
		}
	}
}
