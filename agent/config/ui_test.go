package config

import (
	"strings"
	"testing"
)

// TestUIConfig: ui_config.enabled is off by default, set by a file, and
// forced on by --dev; a mistyped key is refused with its path.
func TestUIConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		dev        bool
		want       bool
		err        string
	}{
		{"default", `{}`, false, false, ""},
		{"file on", `{"ui_config": {"enabled": true}}`, false, true, ""},
		{"dev", `{}`, true, true, ""},
		{"dev wins over file", `{"ui_config": {"enabled": false}}`, true, true, ""},
		{"typo", `{"ui_config": {"enable": true}}`, false, false, "ui_config.enable: unknown key"},
		{"wrong type", `{"ui_config": {"enabled": "yes"}}`, false, false, "ui_config.enabled"},
	} {
		dir := t.TempDir()
		write(t, dir, "ui.json", tc.file)
		c, err := Load([]string{dir}, func(c *Config) { c.Dev = tc.dev })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.UIConfig.Enabled != tc.want {
			t.Errorf("%s: ui_config.enabled = %v, want %v", tc.name, c.UIConfig.Enabled, tc.want)
		}
	}
}
