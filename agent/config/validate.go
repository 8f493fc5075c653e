package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// MinReconnectTimeout is Consul's floor: reaping failed nodes sooner risks
// dropping a node that is only partitioned.
const MinReconnectTimeout = 8 * time.Hour

// Validate reports the first invalid setting as "config: <key>: <reason>".
// It does not modify c and accepts values before Load's normalisation
// (e.g. a domain without the trailing dot).
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	if c.Server && !c.Dev && c.DataDir == "" {
		return errors.New("data_dir: required for a server (or run with --dev)")
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap_expect: must not be negative, got %d", c.BootstrapExpect)
	}
	if c.BootstrapExpect > 0 && !c.Server {
		return errors.New("bootstrap_expect: only valid with server = true")
	}
	if strings.TrimSpace(c.NodeName) == "" {
		return errors.New("node_name: must not be empty")
	}
	if c.NodeID != "" && !IsUUID(c.NodeID) {
		return fmt.Errorf("node_id: %q is not a UUID", c.NodeID)
	}
	if dc := strings.ToLower(c.Datacenter); !isLabel(dc) {
		return fmt.Errorf("datacenter: %q must be letters, digits, '-' and '_' only", c.Datacenter)
	}
	for _, a := range []struct {
		key, val  string
		allowZero bool
	}{
		{"bind_addr", c.BindAddr, true},
		{"advertise_addr", c.AdvertiseAddr, false},
		{"advertise_addr_wan", c.AdvertiseAddrWAN, false},
		{"client_addr", c.ClientAddr, true},
	} {
		if a.val == "" && (a.key == "advertise_addr" || a.key == "advertise_addr_wan") {
			continue // resolved by Load / defaults to advertise_addr
		}
		if err := validIP(a.val, a.allowZero); err != nil {
			return fmt.Errorf("%s: %w", a.key, err)
		}
	}
	for i, j := range c.RetryJoin {
		if strings.TrimSpace(j) == "" {
			return fmt.Errorf("retry_join[%d]: empty address", i)
		}
	}
	for i, j := range c.RetryJoinWAN {
		if strings.TrimSpace(j) == "" {
			return fmt.Errorf("retry_join_wan[%d]: empty address", i)
		}
	}
	if c.Encrypt != "" {
		key, err := base64.StdEncoding.DecodeString(c.Encrypt)
		if err != nil {
			return errors.New("encrypt: not valid base64 (generate a key with cairn keygen)")
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("encrypt: key is %d bytes, want 16, 24 or 32", n)
		}
	}
	for i, r := range c.Recursors {
		if _, err := normalizeRecursor(r); err != nil {
			return fmt.Errorf("recursors[%d]: %w", i, err)
		}
	}
	if err := c.Ports.validate(); err != nil {
		return err
	}
	domain, alt := normalizeDomain(c.Domain), normalizeDomain(c.AltDomain)
	if domain == "" {
		return errors.New("domain: must not be empty")
	}
	if err := validDomain(domain); err != nil {
		return fmt.Errorf("domain: %w", err)
	}
	if alt != "" {
		if err := validDomain(alt); err != nil {
			return fmt.Errorf("alt_domain: %w", err)
		}
		if alt == domain {
			return fmt.Errorf("alt_domain: %q is the same as domain", c.AltDomain)
		}
	}
	if _, ok := normalizeLogLevel(c.LogLevel); !ok {
		return fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if d := c.SessionTTLMin.Duration(); d < 0 || d > 24*time.Hour {
		return fmt.Errorf("session_ttl_min: %s is outside [0s, 24h]", c.SessionTTLMin)
	}
	if c.ReconnectTimeout.Duration() < MinReconnectTimeout {
		return fmt.Errorf("reconnect_timeout: %s is below the minimum of %s", c.ReconnectTimeout, MinReconnectTimeout)
	}
	if c.KV.TombstoneTTL.Duration() <= 0 {
		return fmt.Errorf("kv.tombstone_ttl: must be positive, got %s", c.KV.TombstoneTTL)
	}
	if err := validateMeta(c.NodeMeta); err != nil {
		return fmt.Errorf("node_meta: %w", err)
	}
	if err := c.DNSConfig.validate(); err != nil {
		return fmt.Errorf("dns_config.%w", err)
	}
	if c.Limits.HTTPMaxConnsPerClient < 0 {
		return fmt.Errorf("limits.http_max_conns_per_client: must not be negative (0 is unlimited), got %d", c.Limits.HTTPMaxConnsPerClient)
	}
	if c.Limits.RPCMaxConnsPerClient < 0 {
		return fmt.Errorf("limits.rpc_max_conns_per_client: must not be negative (0 is unlimited), got %d", c.Limits.RPCMaxConnsPerClient)
	}
	switch c.Limits.RequestLimits.Mode {
	case "", RequestLimitsDisabled, RequestLimitsPermissive, RequestLimitsEnforcing:
	default:
		return fmt.Errorf("limits.request_limits.mode: %q is not one of disabled, permissive, enforcing", c.Limits.RequestLimits.Mode)
	}
	if c.Cache.MaxEntries < 1 {
		return fmt.Errorf("cache.max_entries: must be at least 1, got %d", c.Cache.MaxEntries)
	}
	if c.Cache.MaxStale < 0 {
		return fmt.Errorf("cache.max_stale: must not be negative, got %s", c.Cache.MaxStale)
	}
	if err := c.TLSConfig().Validate(); err != nil {
		return err
	}
	if err := c.validateHTTPS(); err != nil {
		return err
	}
	if err := c.Autopilot.validate(); err != nil {
		return fmt.Errorf("autopilot.%w", err)
	}
	if err := c.ACL.validate(); err != nil {
		return err
	}
	return c.validateDefinitions()
}

func (c *Config) validateDefinitions() error {
	serviceIDs := make(map[string]bool)
	checkIDs := make(map[string]string)
	addCheck := func(where string, ch *CheckDefinition) error {
		if err := ch.AllowedBy(c.EnableLocalScriptChecks); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		id := ch.ID
		if id == "" {
			id = ch.Name
		}
		if id == "" {
			return nil // service checks before SetDefaults; IDs come later
		}
		if prev, dup := checkIDs[id]; dup {
			return fmt.Errorf("%s: check id %q already used by %s", where, id, prev)
		}
		checkIDs[id] = where
		return nil
	}
	for i := range c.Services {
		s := &c.Services[i]
		where := fmt.Sprintf("services[%d]", i)
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		id := s.ID
		if id == "" {
			id = s.Name
		}
		if serviceIDs[id] {
			return fmt.Errorf("%s: duplicate service id %q", where, id)
		}
		serviceIDs[id] = true
		for j, ch := range s.AllChecks() {
			if err := addCheck(where+"."+s.checkPath(j), ch); err != nil {
				return err
			}
		}
	}
	for i := range c.Checks {
		ch := &c.Checks[i]
		where := fmt.Sprintf("checks[%d]", i)
		if err := ch.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if ch.Name == "" {
			return fmt.Errorf("%s: name: required", where)
		}
		if ch.ServiceID != "" && !serviceIDs[ch.ServiceID] {
			return fmt.Errorf("%s: service_id %q is not a service defined in the config", where, ch.ServiceID)
		}
		if err := addCheck(where, ch); err != nil {
			return err
		}
	}
	return nil
}

func (p *Ports) validate() error {
	ports := []struct {
		key        string
		val        int
		mayDisable bool
	}{
		{"dns", p.DNS, true},
		{"http", p.HTTP, true},
		{"server", p.Server, false},
		{"serf_lan", p.SerfLAN, false},
		{"serf_wan", p.SerfWAN, true},
		{"https", p.HTTPS, true},
	}
	used := make(map[int]string)
	for _, pt := range ports {
		if pt.val == PortDisabled && pt.mayDisable {
			continue
		}
		if pt.val < 0 || pt.val > 65535 {
			hint := ""
			if pt.mayDisable {
				hint = " (-1 disables it)"
			}
			return fmt.Errorf("ports.%s: %d is not in 0..65535%s", pt.key, pt.val, hint)
		}
		if pt.val == PortAny {
			continue // each listener gets its own port from the kernel
		}
		if prev, ok := used[pt.val]; ok {
			return fmt.Errorf("ports.%s: %d is already used by ports.%s", pt.key, pt.val, prev)
		}
		used[pt.val] = pt.key
	}
	return nil
}

// validate returns errors without the "dns_config." prefix.
func (d *DNSConfig) validate() error {
	switch {
	case d.MaxStale < 0:
		return fmt.Errorf("max_stale: must not be negative, got %s", d.MaxStale)
	case d.NodeTTL < 0:
		return fmt.Errorf("node_ttl: must not be negative, got %s", d.NodeTTL)
	case d.UDPAnswerLimit < 1:
		return fmt.Errorf("udp_answer_limit: must be at least 1, got %d", d.UDPAnswerLimit)
	case d.ARecordLimit < 0:
		return fmt.Errorf("a_record_limit: must not be negative, got %d", d.ARecordLimit)
	case d.RecursorTimeout <= 0:
		return fmt.Errorf("recursor_timeout: must be positive, got %s", d.RecursorTimeout)
	}
	for k, v := range d.ServiceTTL {
		if k == "" {
			return errors.New("service_ttl: empty service name")
		}
		if i := strings.IndexByte(k, '*'); i >= 0 && i != len(k)-1 {
			return fmt.Errorf("service_ttl.%s: '*' is only allowed at the end", k)
		}
		if v < 0 {
			return fmt.Errorf("service_ttl.%s: must not be negative, got %s", k, v)
		}
	}
	return nil
}

func validIP(s string, allowUnspecified bool) error {
	ip := net.ParseIP(s)
	if ip == nil {
		if strings.Contains(s, "{{") {
			return fmt.Errorf("%q: go-sockaddr templates are not supported, give an IP address", s)
		}
		return fmt.Errorf("%q is not an IP address", s)
	}
	if ip.IsUnspecified() && !allowUnspecified {
		return fmt.Errorf("%q cannot be advertised: give this host's reachable address", s)
	}
	return nil
}

func validPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1..65535", p)
	}
	return nil
}

// maxDomainLength is the DNS limit on a presentation-format name.
const maxDomainLength = 253

// validDomain checks a normalised (lower-case, dot-terminated) domain.
func validDomain(d string) error {
	if len(d) > maxDomainLength {
		return fmt.Errorf("%q is longer than %d bytes", d, maxDomainLength)
	}
	for _, l := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if !isLabel(l) {
			return fmt.Errorf("%q is not a valid DNS domain", d)
		}
	}
	return nil
}

// maxLabelLength is the DNS limit on one label.
const maxLabelLength = 63

// isLabel accepts one DNS label of letters, digits, '-' and '_'.
func isLabel(l string) bool {
	if l == "" || len(l) > maxLabelLength {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// IsUUID reports whether s is a UUID in its 8-4-4-4-12 hex form (either
// case), the form of Consul's node IDs.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// validateHTTPS checks that ports.https has what a TLS listener needs.
func (c *Config) validateHTTPS() error {
	if c.Ports.HTTPS == PortDisabled {
		return nil
	}
	hc := c.HTTPSConfig()
	if hc.CertFile == "" || hc.KeyFile == "" {
		return errors.New("ports.https: needs tls.https (or tls.defaults) cert_file and key_file")
	}
	if err := hc.Validate(); err != nil {
		return fmt.Errorf("ports.https: %w", err)
	}
	return nil
}
