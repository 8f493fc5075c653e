package config

// UIConfig is Consul's ui_config block.
//
// Merge note: branch wconfig declares this same type in config.go; when
// both are merged, delete this file (the build says "UIConfig redeclared").
type UIConfig struct {
	// Enabled serves the web UI from this agent's HTTP port.
	Enabled bool `json:"enabled"`
}
