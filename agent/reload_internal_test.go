package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/cairnd/cairn/agent/config"
)

// TestReloadPushesLogLevel: log_level changes in place on reload (the
// logger's level is pushed, not read from the config it started with),
// and a bad file leaves it as it was.
func TestReloadPushesLogLevel(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "a.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"log_level": "error"}`)
	opts := Options{ConfigDirs: []string{dir}, Apply: func(c *config.Config) { c.Dev = true }}
	cfg, err := config.Load(opts.ConfigDirs, opts.Apply)
	if err != nil {
		t.Fatal(err)
	}
	logger, mon, err := NewLogger(cfg.LogLevel, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, opts, logger, mon)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.log.Core().Enabled(zapcore.InfoLevel) {
		t.Fatal("info enabled at log_level error")
	}
	write(`{"log_level": "debug"}`)
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !a.log.Core().Enabled(zapcore.DebugLevel) {
		t.Fatal("debug not enabled after reloading log_level debug")
	}
	write(`{"log_level": "loud"}`)
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("reload of a bad log_level succeeded")
	}
	if !a.log.Core().Enabled(zapcore.DebugLevel) || a.live.Load().LogLevel != "debug" {
		t.Fatal("a failed reload changed the running log level")
	}
}
