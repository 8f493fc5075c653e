package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAutopilotBlock(t *testing.T) {
	c, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Autopilot != DefaultAutopilot() || !c.Autopilot.CleanupDeadServers || c.Autopilot.LastContactThreshold.Duration() != 200*time.Millisecond ||
		c.Autopilot.ServerStabilizationTime.Duration() != 10*time.Second {
		t.Fatalf("defaults: %+v", c.Autopilot)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"autopilot": {"cleanup_dead_servers": false, "last_contact_threshold": "1s"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultAutopilot()
	want.CleanupDeadServers, want.LastContactThreshold = false, Duration(time.Second)
	if c.Autopilot != want {
		t.Fatalf("from file: %+v, want %+v", c.Autopilot, want)
	}
	if sc := c.Autopilot.ServerConfig(); sc.CleanupDeadServers || sc.LastContactThreshold != time.Second || sc.ServerStabilizationTime != 10*time.Second || sc.MaxTrailingLogs != 250 {
		t.Fatalf("server view: %+v", sc)
	}
}
