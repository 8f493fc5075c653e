package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Check kinds, as reported by CheckDefinition.Kind.
const (
	CheckHTTP   = "http"
	CheckTCP    = "tcp"
	CheckTTL    = "ttl"
	CheckScript = "args"
)

// Initial check statuses (Consul's health states).
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

const (
	// MinCheckInterval keeps a typo ("1ms") from turning a check into a
	// busy loop against the service; Consul uses the same floor.
	MinCheckInterval = time.Second

	// Meta limits are Consul's, so metadata accepted here is accepted there.
	MetaMaxPairs       = 64
	MetaKeyMaxLength   = 128
	MetaValueMaxLength = 512
	metaReservedPrefix = "consul-"
)

// ServiceDefinition is a service in Consul's shape, from a config file's
// "service"/"services" keys or the /v1/agent/service/register body.
type ServiceDefinition struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Tags              []string          `json:"tags"`
	Address           string            `json:"address"`
	Port              int               `json:"port"`
	Meta              map[string]string `json:"meta"`
	Weights           Weights           `json:"weights"`
	EnableTagOverride bool              `json:"enable_tag_override"`
	Check             *CheckDefinition  `json:"check"`
	Checks            []CheckDefinition `json:"checks"`
}

// Weights are the DNS SRV weights for passing and warning instances. The
// zero value means Consul's default, 1 and 1 (see SetDefaults).
type Weights struct {
	Passing int `json:"passing"`
	Warning int `json:"warning"`
}

// CheckDefinition is a health check in Consul's shape. Exactly one of HTTP,
// TCP, TTL or Args says what kind it is.
type CheckDefinition struct {
	ID        string `json:"id" alias:"check_id"`
	Name      string `json:"name"`
	Notes     string `json:"notes"`
	ServiceID string `json:"service_id"`
	// Status is the initial status; empty means critical, as in Consul.
	Status string `json:"status"`

	HTTP          string              `json:"http"`
	Method        string              `json:"method"`
	Header        map[string][]string `json:"header"`
	TLSSkipVerify bool                `json:"tls_skip_verify"`

	TCP string `json:"tcp"`

	TTL Duration `json:"ttl"`

	// Args is the command of a script check (exec'd directly, no shell).
	Args []string `json:"args" alias:"script_args"`
	// Script is Consul's removed shell-string form; it is always refused
	// with a hint to use Args.
	Script string `json:"script"`

	Interval                       Duration `json:"interval"`
	Timeout                        Duration `json:"timeout"`
	DeregisterCriticalServiceAfter Duration `json:"deregister_critical_service_after"`
}

// Kind returns CheckHTTP, CheckTCP, CheckTTL or CheckScript, or "" when
// none of them is set.
func (c *CheckDefinition) Kind() string {
	switch {
	case c.HTTP != "":
		return CheckHTTP
	case c.TCP != "":
		return CheckTCP
	case c.TTL != 0:
		return CheckTTL
	case len(c.Args) > 0:
		return CheckScript
	}
	return ""
}

// ErrScriptChecksDisabled is returned (wrapped) for an args check when the
// agent does not allow local script checks.
var ErrScriptChecksDisabled = errors.New("script checks are disabled: start the agent with --enable-local-script-checks (or enable_local_script_checks in a config file) to run args checks")

// AllowedBy reports whether the agent may run this check given its
// enable_local_script_checks setting.
func (c *CheckDefinition) AllowedBy(enableLocalScriptChecks bool) error {
	if c.Kind() == CheckScript && !enableLocalScriptChecks {
		return ErrScriptChecksDisabled
	}
	return nil
}

// SetDefaults fills Consul's defaults: status critical, ID from Name.
func (c *CheckDefinition) SetDefaults() {
	if c.Status == "" {
		c.Status = StatusCritical
	}
	if c.ID == "" {
		c.ID = c.Name
	}
}

// Validate checks the definition's shape. It accepts a definition before
// SetDefaults; whether script checks are allowed is AllowedBy's business.
func (c *CheckDefinition) Validate() error {
	if err := c.validateText(); err != nil {
		return err
	}
	if c.Script != "" {
		return errors.New(`script: the legacy "script" key is not supported; use "args": ["/bin/sh", "-c", "<command>"] instead`)
	}
	var kinds []string
	if c.HTTP != "" {
		kinds = append(kinds, "http")
	}
	if c.TCP != "" {
		kinds = append(kinds, "tcp")
	}
	if c.TTL != 0 {
		kinds = append(kinds, "ttl")
	}
	if len(c.Args) > 0 {
		kinds = append(kinds, "args")
	}
	switch len(kinds) {
	case 0:
		return errors.New("one of http, tcp, ttl or args is required")
	case 1:
	default:
		return fmt.Errorf("only one of http, tcp, ttl or args may be set, got %s", strings.Join(kinds, " and "))
	}
	kind := c.Kind()
	switch kind {
	case CheckTTL:
		if c.TTL < 0 {
			return fmt.Errorf("ttl: must be positive, got %s", c.TTL)
		}
	default:
		if c.Interval == 0 {
			return fmt.Errorf("interval: required for %s checks", kinds[0])
		}
		if c.Interval.Duration() < MinCheckInterval {
			return fmt.Errorf("interval: %s is below the minimum of %s", c.Interval, MinCheckInterval)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: must not be negative, got %s", c.Timeout)
	}
	if c.DeregisterCriticalServiceAfter < 0 {
		return fmt.Errorf("deregister_critical_service_after: must not be negative, got %s", c.DeregisterCriticalServiceAfter)
	}
	switch c.Status {
	case "", StatusPassing, StatusWarning, StatusCritical:
	default:
		return fmt.Errorf("status: %q is not one of passing, warning, critical", c.Status)
	}
	if kind == CheckHTTP {
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http: %q is not an http:// or https:// URL", c.HTTP)
		}
	}
	if c.Method != "" {
		if kind != CheckHTTP {
			return errors.New("method: only valid for http checks")
		}
		if strings.IndexFunc(c.Method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
			return fmt.Errorf("method: %q is not an upper-case HTTP method", c.Method)
		}
	}
	if kind == CheckTCP {
		if err := validHostPort(c.TCP); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
	}
	if kind == CheckScript && c.Args[0] == "" {
		return errors.New("args: the first element (the program) is empty")
	}
	return nil
}

func validHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port", hp)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", hp)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1..65535", hp)
	}
	return nil
}

// AllChecks returns Check followed by Checks.
func (s *ServiceDefinition) AllChecks() []*CheckDefinition {
	var out []*CheckDefinition
	if s.Check != nil {
		out = append(out, s.Check)
	}
	for i := range s.Checks {
		out = append(out, &s.Checks[i])
	}
	return out
}

// SetDefaults fills Consul's defaults: ID from Name, weights 1/1, and for
// each check the service ID, a name "Service '<name>' check" and an ID
// "service:<id>" (":<n>" appended, from 1, when there are several).
func (s *ServiceDefinition) SetDefaults() {
	if s.ID == "" {
		s.ID = s.Name
	}
	if s.Weights == (Weights{}) {
		s.Weights = Weights{Passing: 1, Warning: 1}
	}
	checks := s.AllChecks()
	for i, c := range checks {
		if c.ServiceID == "" {
			c.ServiceID = s.ID
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("Service '%s' check", s.Name)
		}
		if c.ID == "" {
			c.ID = "service:" + s.ID
			if len(checks) > 1 {
				c.ID += ":" + strconv.Itoa(i+1)
			}
		}
		c.SetDefaults()
	}
}

// Validate checks the definition's shape, including its checks. It accepts a
// definition before SetDefaults.
func (s *ServiceDefinition) Validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return errors.New("name: required")
	}
	if err := s.validateText(); err != nil {
		return err
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port: %d is not in 0..65535", s.Port)
	}
	if s.Weights != (Weights{}) {
		if s.Weights.Passing < 1 {
			return fmt.Errorf("weights.passing: must be at least 1, got %d", s.Weights.Passing)
		}
		if s.Weights.Warning < 0 {
			return fmt.Errorf("weights.warning: must not be negative, got %d", s.Weights.Warning)
		}
	}
	if err := validateMeta(s.Meta); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	id := s.ID
	if id == "" {
		id = s.Name
	}
	for i, c := range s.AllChecks() {
		where := s.checkPath(i)
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if c.ServiceID != "" && c.ServiceID != id {
			return fmt.Errorf("%s: service_id %q does not match the service's id %q", where, c.ServiceID, id)
		}
	}
	return nil
}

// checkPath names the i-th entry of AllChecks by its key in the definition.
func (s *ServiceDefinition) checkPath(i int) string {
	if s.Check != nil {
		if i == 0 {
			return "check"
		}
		i--
	}
	return fmt.Sprintf("checks[%d]", i)
}

func validateMeta(m map[string]string) error {
	if len(m) > MetaMaxPairs {
		return fmt.Errorf("%d pairs, at most %d allowed", len(m), MetaMaxPairs)
	}
	for k, v := range m {
		switch {
		case k == "":
			return errors.New("empty key")
		case len(k) > MetaKeyMaxLength:
			return fmt.Errorf("key %.20q...: longer than %d bytes", k, MetaKeyMaxLength)
		case strings.IndexFunc(k, notMetaKeyRune) >= 0:
			return fmt.Errorf("key %q: only letters, digits, '-' and '_' are allowed", k)
		case strings.HasPrefix(k, metaReservedPrefix):
			return fmt.Errorf("key %q: prefix %q is reserved", k, metaReservedPrefix)
		case len(v) > MetaValueMaxLength:
			return fmt.Errorf("key %q: value longer than %d bytes", k, MetaValueMaxLength)
		}
	}
	return nil
}

func notMetaKeyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}
