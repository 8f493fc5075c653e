package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Load builds the agent configuration:
//
//  1. DefaultConfig;
//  2. every *.json file of each path in dirs, paths in the given order and
//     files in lexical order within a directory (a path naming a file loads
//     that file); scalars and struct fields from later files override
//     earlier ones, maps gain keys, and retry_join, retry_join_wan,
//     recursors, services and checks append;
//  3. apply, where the CLI sets the flags the operator gave (flags win);
//  4. the --dev adjustments when Dev is set;
//  5. normalisation (FQDN domains, lower-case datacenter, IP:port
//     recursors, advertise address, service and check defaults);
//  6. Validate.
//
// Any error returns a nil Config: a bad file never leaves a half-applied
// configuration. Errors name the file, the key path and the reason.
func Load(dirs []string, apply func(*Config)) (*Config, error) {
	c := DefaultConfig()
	for _, dir := range dirs {
		files, err := configFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("config: read %s: %w", f, err)
			}
			if err := c.mergeFile(data); err != nil {
				return nil, fmt.Errorf("config: %s: %w", f, err)
			}
		}
	}
	if apply != nil {
		apply(c)
	}
	if c.Dev {
		c.applyDev()
	}
	c.normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// configFiles lists the files to load from path: the *.json files of a
// directory (sorted by name, sub-directories skipped) or path itself.
func configFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: config dir %s: %w", path, err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("config: read config dir %s: %w", path, err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(path, e.Name())
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// fileConfig is the shape of one config file: the Config keys plus Consul's
// single-object "service" and "check".
type fileConfig struct {
	Config
	Service *ServiceDefinition `json:"service"`
	Check   *CheckDefinition   `json:"check"`
}

// mergeFile decodes one file over c. It decodes into a copy, so c is
// untouched when the file is bad.
func (c *Config) mergeFile(data []byte) error {
	fc := fileConfig{Config: *c}
	fc.NodeMeta = maps.Clone(c.NodeMeta)
	fc.DNSConfig.ServiceTTL = maps.Clone(c.DNSConfig.ServiceTTL)
	fc.RetryJoin, fc.RetryJoinWAN, fc.Recursors, fc.Services, fc.Checks = nil, nil, nil, nil, nil
	fc.cloneTLS()
	if err := DecodeStrict(data, &fc); err != nil {
		return err
	}
	if err := fc.validateDefinitions(); err != nil {
		return err
	}
	n := fc.Config
	n.RetryJoin = append(c.RetryJoin, fc.RetryJoin...)
	n.RetryJoinWAN = append(c.RetryJoinWAN, fc.RetryJoinWAN...)
	n.Recursors = append(c.Recursors, fc.Recursors...)
	n.Services = c.Services
	if fc.Service != nil {
		n.Services = append(n.Services, *fc.Service)
	}
	n.Services = append(n.Services, fc.Services...)
	n.Checks = c.Checks
	if fc.Check != nil {
		n.Checks = append(n.Checks, *fc.Check)
	}
	n.Checks = append(n.Checks, fc.Checks...)
	*c = n
	return nil
}

// validateDefinitions checks the shape of the file's own services and checks
// so that their errors can name the file. Rules that depend on the merged
// config (script checks allowed, service_id references, duplicate IDs) wait
// for Config.Validate.
func (fc *fileConfig) validateDefinitions() error {
	if fc.Service != nil {
		if err := fc.Service.Validate(); err != nil {
			return fmt.Errorf("service: %w", err)
		}
	}
	for i := range fc.Services {
		if err := fc.Services[i].Validate(); err != nil {
			return fmt.Errorf("services[%d]: %w", i, err)
		}
	}
	if fc.Check != nil {
		if err := fc.Check.Validate(); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	for i := range fc.Checks {
		if err := fc.Checks[i].Validate(); err != nil {
			return fmt.Errorf("checks[%d]: %w", i, err)
		}
	}
	return nil
}

// applyDev makes c a single in-memory server on loopback. An address the
// operator set explicitly is kept; the rest is forced.
func (c *Config) applyDev() {
	c.Server = true
	c.BootstrapExpect = 1
	c.UIConfig.Enabled = true
	c.DataDir = ""
	if c.BindAddr == DefaultBindAddr {
		c.BindAddr = "127.0.0.1"
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = defaultAdvertise(c.BindAddr)
	}
}

// normalize rewrites values into the canonical form the rest of the agent
// relies on. Invalid values are left alone for Validate to report.
func (c *Config) normalize() {
	c.Datacenter = strings.ToLower(strings.TrimSpace(c.Datacenter))
	c.Domain = normalizeDomain(c.Domain)
	c.AltDomain = normalizeDomain(c.AltDomain)
	if lvl, ok := normalizeLogLevel(c.LogLevel); ok {
		c.LogLevel = lvl
	}
	for i, r := range c.Recursors {
		if n, err := normalizeRecursor(r); err == nil {
			c.Recursors[i] = n
		}
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = defaultAdvertise(c.BindAddr)
	}
	for i := range c.Services {
		c.Services[i].SetDefaults()
	}
	for i := range c.Checks {
		c.Checks[i].SetDefaults()
	}
}

func normalizeDomain(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if d != "" && !strings.HasSuffix(d, ".") {
		d += "."
	}
	return d
}

// normalizeLogLevel folds Consul's level names into zap's four.
func normalizeLogLevel(l string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "trace", "debug":
		return "debug", true
	case "info":
		return "info", true
	case "warn", "warning":
		return "warn", true
	case "err", "error":
		return "error", true
	}
	return l, false
}

// normalizeRecursor returns r as IP:port, adding port 53 when absent.
// Recursors must be IPs: resolving a recursor's name would need a recursor.
func normalizeRecursor(r string) (string, error) {
	host, port, err := net.SplitHostPort(r)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(r, "["), "]"), DefaultRecursorPort
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", fmt.Errorf("%q is not an IP address or IP:port", r)
	}
	if err := validPort(port); err != nil {
		return "", fmt.Errorf("%q: %w", r, err)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// defaultAdvertise is the address other agents should use when none was
// given: bind itself when it is specific, otherwise the host's first private
// IPv4 address, otherwise loopback.
func defaultAdvertise(bind string) string {
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return bind
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip4 := n.IP.To4(); ip4 != nil && ip4.IsPrivate() && !ip4.IsLoopback() {
					return ip4.String()
				}
			}
		}
	}
	return "127.0.0.1"
}
