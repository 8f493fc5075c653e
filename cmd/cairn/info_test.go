package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestInfo pins info's layout: sorted sections, then "\tkey = value"
// lines; values change from run to run, so the golden file keeps the keys.
func TestInfo(t *testing.T) {
	a := devAgent(t)
	got := check(t, "info", a.HTTPAddr, &InfoCmd{}, "", result{stdout: "~(?m)^agent:\n(\t.+ = .*\n)+"})
	golden(t, "info_keys", regexp.MustCompile(`(?m) = .*$`).ReplaceAllString(got.stdout, ""))
	check(t, "agent down", unreachable, &InfoCmd{}, "", result{stderr: "~^Error querying agent: Error connecting", code: 1})
}

// TestReload re-reads an agent's config dir: a good file reloads, a bad
// one exits 1 and leaves the agent serving.
func TestReload(t *testing.T) {
	dir := configDir(t, `{"node_meta": {"rack": "r1"}}`)
	a := startAgent(t, AgentCmd{Dev: true}, dir)
	check(t, "reload", a.HTTPAddr, &ReloadCmd{}, "", result{stdout: "Configuration reload triggered\n"})
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(`{"node_meta": `), 0o600); err != nil {
		t.Fatal(err)
	}
	check(t, "reload bad file", a.HTTPAddr, &ReloadCmd{}, "", result{
		stderr: "~^Error reloading: Unexpected response code: \\d+ \\(config: .*test.json", code: 1})
	check(t, "agent still serves", a.HTTPAddr, &MembersCmd{Status: "alive"}, "", result{stdout: "~cli-test"})
	check(t, "agent down", unreachable, &ReloadCmd{}, "", result{stderr: "~^Error reloading: Error connecting", code: 1})
}
