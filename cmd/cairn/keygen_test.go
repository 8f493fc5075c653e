package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestKeygen(t *testing.T) {
	first := check(t, "keygen", "", KeygenCmd{}, "", result{stdout: "~^[A-Za-z0-9+/]{43}=\n$"})
	second := check(t, "keygen again", "", KeygenCmd{}, "", result{stdout: "~^[A-Za-z0-9+/]{43}=\n$"})
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(first.stdout)); err != nil || len(k) != 32 {
		t.Fatalf("key %q: %d bytes, %v; want 32 (AES-256)", first.stdout, len(k), err)
	}
	if first.stdout == second.stdout {
		t.Fatal("two keygen runs printed the same key")
	}
}

// TestKeyring rotates the gossip key of an encrypted dev agent: install,
// use, remove, each checked with --list.
func TestKeyring(t *testing.T) {
	key1, key2 := strings.TrimSpace(run(t, "", KeygenCmd{}, "").stdout), strings.TrimSpace(run(t, "", KeygenCmd{}, "").stdout)
	a := startAgent(t, AgentCmd{Dev: true, Encrypt: &key1})
	list := func(keys ...string) result {
		out := "==> Gathering installed encryption keys...\n"
		for _, pool := range []string{"dc1 (LAN)"} { // no WAN pool: the agent has none
			out += "\n" + pool + ":\n"
			for _, k := range keys {
				out += "  " + k + " [1/1]\n"
			}
		}
		return result{stdout: out}
	}
	steps := []struct {
		name string
		cmd  KeyringCmd
		want result
	}{
		{"list", KeyringCmd{List: true}, list(key1)},
		{"install", KeyringCmd{Install: key2}, result{stdout: "==> Installing new gossip encryption key...\n"}},
		{"list both", KeyringCmd{List: true}, list(sorted(key1, key2)...)},
		{"remove primary", KeyringCmd{Remove: key1}, result{
			stdout: "==> Removing gossip encryption key...\n", stderr: "~^error: remove: Unexpected response code: ", code: 1}},
		{"use", KeyringCmd{Use: key2}, result{stdout: "==> Changing primary gossip encryption key...\n"}},
		{"remove old", KeyringCmd{Remove: key1}, result{stdout: "==> Removing gossip encryption key...\n"}},
		{"list rotated", KeyringCmd{List: true}, list(key2)},
		{"install garbage", KeyringCmd{Install: "not-a-key"}, result{
			stdout: "==> Installing new gossip encryption key...\n", stderr: "~^error: install: Unexpected response code: \\d+ \\(.*key is not base64", code: 1}},
		{"no operation", KeyringCmd{}, result{stderr: "Exactly one of --list, --install, --use or --remove is required.\n", code: 1}},
	}
	for _, s := range steps {
		check(t, s.name, a.HTTPAddr, &s.cmd, "", s.want)
	}
	check(t, "agent down", unreachable, &KeyringCmd{List: true}, "", result{
		stdout: "==> Gathering installed encryption keys...\n", stderr: "~^error: Error connecting to Cairn agent: ", code: 1})
}

func sorted(a, b string) []string {
	if a > b {
		return []string{b, a}
	}
	return []string{a, b}
}
