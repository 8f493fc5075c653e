package main

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// A kong root help with nested commands, as `cairn --help` prints it.
const rootHelp = `Usage: cairn <command> [flags]

DNS-first service discovery (Consul-compatible).

Flags:
  -h, --help    Show context-sensitive help.
      --http-addr="127.0.0.1:8500"
                Address of the local agent's HTTP API ($CAIRN_HTTP_ADDR).

Commands:
  agent [flags]
    Run a Cairn agent (client or server).

  kv get <key> [flags]
    Read a key.

  kv put <key> [<value>] [flags]
    Write a key.

  operator raft list-peers [flags]
    List Raft peers.

Run "cairn <command> --help" for more information on a command.
`

func TestParseCommands(t *testing.T) {
	got := parseCommands(rootHelp)
	want := [][]string{{"agent"}, {"kv", "get"}, {"kv", "put"}, {"operator", "raft", "list-peers"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseCommands = %q, want %q", got, want)
	}
	if f := parseFlags(rootHelp); !reflect.DeepEqual(f, []string{"--help", "--http-addr"}) {
		t.Fatalf("parseFlags = %q", f)
	}
}

func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	h := &Help{Root: rootHelp, Commands: []Command{
		{Path: []string{"agent"}, Flags: []string{"--help", "--dev", "--server"}},
		{Path: []string{"kv", "get"}, Flags: []string{"--help", "--recurse"}},
		{Path: []string{"kv", "put"}, Flags: []string{"--help", "--cas"}},
		{Path: []string{"operator", "raft", "list-peers"}, Flags: []string{"--help"}},
	}}
	for _, tc := range []struct {
		words string // COMP_WORDS, the last one being completed
		want  string
	}{
		{"cairn ''", "--help --http-addr agent kv operator"},
		{"cairn a", "agent"},
		{"cairn agent --s", "--server"},
		{"cairn kv ''", "get put"},
		{"cairn kv get --r", "--recurse"},
		{"cairn --http-addr=x kv put --c", "--cas"},
		{"cairn operator raft l", "list-peers"},
		{"cairn kv get mykey --", "--help --recurse"},
	} {
		script := h.Bash() + `
COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cairn; echo "${COMPREPLY[*]}"`
		out, err := exec.Command(bash, "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.words, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("complete %s: %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestManEscape(t *testing.T) {
	for in, want := range map[string]string{
		`.starts with dot`: `\&.starts with dot`,
		`a\b --flag`:       `a\eb \-\-flag`,
	} {
		if got := manEscape(in); got != want {
			t.Errorf("manEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
