package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/cairnd/cairn/agent/config"
)

// TestReloadHCL: a reload reads HCL files like the start does; a bad HCL
// file fails the reload naming file:line and keeps the running services.
func TestReloadHCL(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10-base.hcl", "service {\n  name = \"web\"\n  port = 80\n}\n")
	a, _ := inProcessAgent(t, dir, "hcl1", func(c *config.Config) { c.Dev = true })
	if s := a.LocalServices(); s["web"] == nil {
		t.Fatalf("services at start = %v, want web from HCL", s)
	}

	write("20-more.hcl", "service {\n  name = \"db\"\n  port = 5432\n  connect {\n    sidecar_service {}\n  }\n}\n")
	if err := a.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s := a.LocalServices(); s["web"] == nil || s["db"] == nil {
		t.Fatalf("services after reload = %v, want web and db", s)
	}

	bad := filepath.Join(dir, "30-bad.hcl")
	write("30-bad.hcl", "service {\n  name = \"cache\"\n  prot = 6379\n}\n")
	err := a.Reload(context.Background())
	want := "^config: " + regexp.QuoteMeta(bad) + `:3: service\.prot: unknown key \(did you mean "port"\?\)$`
	if err == nil || !regexp.MustCompile(want).MatchString(err.Error()) {
		t.Fatalf("bad reload error = %v, want %s", err, want)
	}
	if s := a.LocalServices(); s["web"] == nil || s["db"] == nil || s["cache"] != nil {
		t.Fatalf("services after a failed reload = %v, want web and db unchanged", s)
	}
}
