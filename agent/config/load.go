package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Load builds the agent configuration:
//
//  1. DefaultConfig;
//  2. every *.json and *.hcl file of each path in dirs, paths in the given
//     order and files in lexical order within a directory (a path naming a
//     file loads that file); scalars and struct fields from later files
//     override earlier ones, maps gain keys, and retry_join,
//     retry_join_wan, recursors, services and checks append;
//  3. apply, where the CLI sets the flags the operator gave (flags win);
//  4. the --dev adjustments when Dev is set;
//  5. normalisation (FQDN domains, lower-case datacenter, IP:port
//     recursors, advertise address, service and check defaults);
//  6. Validate.
//
// Any error returns a nil Config: a bad file never leaves a half-applied
// configuration. Errors name the file, line, key path and reason. What is
// worth saying but not fatal (a skipped file, an ignored Consul key) is
// in the returned Config's Warnings, for the caller to log.
func Load(dirs []string, apply func(*Config)) (*Config, error) {
	c := DefaultConfig()
	var warnings []string
	for _, dir := range dirs {
		files, skipped, err := configFiles(dir)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, skipped...)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("config: read %s: %w", f, err)
			}
			w, err := c.mergeFile(f, data)
			if err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
			warnings = append(warnings, w...)
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
	c.Warnings = warnings
	return c, nil
}

// Config file formats, by extension as in Consul.
const (
	extJSON = ".json"
	extHCL  = ".hcl"
)

// configFiles lists the files to load from path: the *.json and *.hcl
// files of a directory (sorted by name, sub-directories skipped) or path
// itself. Other files of a directory are returned as warnings, one each,
// as Consul warns about them.
func configFiles(path string) (files, skipped []string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: config dir %s: %w", path, err)
	}
	if !fi.IsDir() {
		return []string{path}, nil, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: read config dir %s: %w", path, err)
	}
	for _, e := range ents {
		p := filepath.Join(path, e.Name())
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case extJSON, extHCL:
			files = append(files, p)
		default:
			skipped = append(skipped, fmt.Sprintf("skipping file %s, extension must be .hcl or .json", p))
		}
	}
	return files, skipped, nil
}

// fileConfig is the shape of one config file: the Config keys plus Consul's
// single-object "service" and "check".
type fileConfig struct {
	Config
	Service *ServiceDefinition `json:"service"`
	Check   *CheckDefinition   `json:"check"`
}

// mergeFile decodes the file name (HCL when it ends in .hcl, JSON
// otherwise) over c, returning its warnings. It decodes into a copy, so c
// is untouched when the file is bad.
func (c *Config) mergeFile(name string, data []byte) ([]string, error) {
	fc := fileConfig{Config: *c}
	fc.NodeMeta = maps.Clone(c.NodeMeta)
	fc.DNSConfig.ServiceTTL = maps.Clone(c.DNSConfig.ServiceTTL)
	fc.RetryJoin, fc.RetryJoinWAN, fc.Recursors, fc.Services, fc.Checks = nil, nil, nil, nil, nil
	fc.cloneTLS()
	warnings, lines, err := decodeFile(name, data, &fc)
	if err != nil {
		return nil, err
	}
	if err := fc.validateDefinitions(); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, fileError(name, lines(), de)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
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
	return warnings, nil
}

// decodeFile parses one file and decodes it strictly into fc: both formats
// become the same generic document, lose the ignored Consul keys (one
// warning each) and go through the one strict decoder. lines gives the
// key path → line table (computed on demand for JSON).
func decodeFile(name string, data []byte, fc *fileConfig) (warnings []string, lines func() map[string]int, err error) {
	var doc any
	var table map[string]int
	if filepath.Ext(name) == extHCL {
		table = map[string]int{}
		lines = func() map[string]int { return table }
		doc, err = parseHCL(data, reflect.TypeFor[fileConfig](), table)
	} else {
		lines = func() map[string]int {
			if table == nil {
				table = jsonLines(data)
			}
			return table
		}
		doc, err = parseJSON(data)
	}
	if err != nil {
		if table == nil { // JSON syntax errors carry their own line
			return nil, lines, fileError(name, nil, err)
		}
		return nil, lines, fileError(name, table, err)
	}
	type ignored struct {
		line int
		path string
	}
	var found []ignored
	newIgnoreSet().strip(doc, reflect.TypeFor[fileConfig](), "", func(path string) {
		found = append(found, ignored{lineOf(lines(), path), path})
	})
	sort.SliceStable(found, func(i, j int) bool { return found[i].line < found[j].line })
	for _, f := range found {
		warnings = append(warnings, fmt.Sprintf("%s: %s: ignored: Cairn does not implement this Consul key",
			filePos(name, f.line), f.path))
	}
	if err := decodeValue(reflect.ValueOf(fc).Elem(), doc, ""); err != nil {
		return nil, lines, fileError(name, lines(), err)
	}
	return warnings, lines, nil
}

// filePos is "file:line", or "file" when the line is unknown.
func filePos(name string, line int) string {
	if line <= 0 {
		return name
	}
	return fmt.Sprintf("%s:%d", name, line)
}

// fileError names the file and, when the key path has one, its line, and
// adds "did you mean" to an unknown key that is close to a known one.
func fileError(name string, lines map[string]int, err error) error {
	var de *DecodeError
	if !errors.As(err, &de) {
		return fmt.Errorf("%s: %w", name, err)
	}
	msg := de.Error()
	if de.Suggest != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", de.Suggest)
	}
	return fmt.Errorf("%s: %s", filePos(name, lineOf(lines, deepestPath(lines, de))), msg)
}

// deepestPath extends the path of a definition error with the key path
// its reason starts with ("service" + "check: interval: required" is at
// "service.check"), as far as the file has those keys, so the line is the
// nested key's own.
func deepestPath(lines map[string]int, de *DecodeError) string {
	path := de.Path
	for _, seg := range strings.Split(de.Reason, ": ") {
		next := joinPath(path, seg)
		if strings.HasPrefix(seg, "[") {
			next = path + seg
		}
		if _, ok := lines[next]; !ok {
			break
		}
		path = next
	}
	return path
}

// validateDefinitions checks the shape of the file's own services and checks
// so that their errors can name the file. Rules that depend on the merged
// config (script checks allowed, service_id references, duplicate IDs) wait
// for Config.Validate.
func (fc *fileConfig) validateDefinitions() error {
	if fc.Service != nil {
		if err := fc.Service.Validate(); err != nil {
			return &DecodeError{Path: "service", Reason: err.Error()}
		}
	}
	for i := range fc.Services {
		if err := fc.Services[i].Validate(); err != nil {
			return &DecodeError{Path: indexPath("services", i), Reason: err.Error()}
		}
	}
	if fc.Check != nil {
		if err := fc.Check.Validate(); err != nil {
			return &DecodeError{Path: "check", Reason: err.Error()}
		}
	}
	for i := range fc.Checks {
		if err := fc.Checks[i].Validate(); err != nil {
			return &DecodeError{Path: indexPath("checks", i), Reason: err.Error()}
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
	if c.UI != nil && *c.UI {
		c.UIConfig.Enabled = true
	}
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
