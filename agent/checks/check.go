package checks

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

const (
	// CheckBufSize bounds a check's output. Consul's default
	// (check_output_max_size) is 4 KiB: enough for an error page or a stack
	// trace tail, small enough that thousands of checks stay cheap to
	// replicate through Raft.
	CheckBufSize = 4 * 1024

	// DefaultTimeout bounds one run when the definition sets none
	// (Consul's default for HTTP and TCP checks).
	DefaultTimeout = 10 * time.Second

	// DefaultScriptTimeout bounds a script run when the definition sets no
	// timeout (Consul's: scripts get longer than network probes).
	DefaultScriptTimeout = 30 * time.Second

	// MinDeregisterCriticalServiceAfter is the shortest reap delay
	// ReapAfter returns (Consul's minimum of 1 minute): a shorter one
	// would deregister services on a routine restart of the backend.
	MinDeregisterCriticalServiceAfter = time.Minute

	// MinInterval is the shortest interval New accepts; shorter ones are
	// raised to it (Consul's checks.MinInterval) so a typo cannot turn a
	// check into a busy loop.
	MinInterval = time.Second

	// JitterFraction: each period after the first is Interval plus a random
	// jitter up to Interval/JitterFraction, so checks started together drift
	// apart instead of hitting a shared backend in lockstep.
	JitterFraction = 16
)

// Check types, as HealthCheck.Type carries them (Consul's spelling).
const (
	TypeHTTP   = "http"
	TypeTCP    = "tcp"
	TypeTTL    = "ttl"
	TypeScript = "script"
)

// ErrScriptsDisabled is returned by New for a script (Args) check when the
// runtime did not enable script checks.
var ErrScriptsDisabled = errors.New("checks: script checks are disabled; start the agent with --enable-local-script-checks to allow them")

// Notifier receives check results. The agent's local state implements it.
// Implementations must not call back into the runner that notifies them.
type Notifier interface {
	UpdateCheck(checkID string, status, output string)
}

// Runner is a running check.
type Runner interface {
	// Start begins the schedule; calling it twice is a no-op.
	Start()
	// Stop ends the schedule and waits for the runner's goroutine.
	Stop()
}

// Definition is one check as configured (Consul's check definition shape).
// It stands in for agent/config's CheckDefinition until that lands.
type Definition struct {
	ID        string
	Name      string
	Notes     string
	ServiceID string
	// Status is the initial status; empty means critical (Consul's default
	// until the first run).
	Status string

	HTTP          string
	Method        string
	Header        map[string][]string
	TLSSkipVerify bool

	TCP string

	TTL time.Duration

	Args []string

	Interval time.Duration
	Timeout  time.Duration

	// DeregisterCriticalServiceAfter reaps the check's service once the
	// check has been critical this long (0 = never). The runtime passes it
	// to the local state; runners ignore it.
	DeregisterCriticalServiceAfter time.Duration
}

// Type reports which kind of check d is ("" when none is set).
func (d *Definition) Type() string {
	switch {
	case d.HTTP != "":
		return TypeHTTP
	case d.TCP != "":
		return TypeTCP
	case d.TTL > 0:
		return TypeTTL
	case len(d.Args) > 0:
		return TypeScript
	}
	return ""
}

// Validate reports a precise error for a definition New cannot run.
func (d *Definition) Validate() error {
	if d.ID == "" {
		return errors.New("checks: check ID is required")
	}
	n := 0
	for _, set := range []bool{d.HTTP != "", d.TCP != "", d.TTL > 0, len(d.Args) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("checks: check %q: exactly one of http, tcp, ttl or args must be set (got %d)", d.ID, n)
	}
	if d.Type() != TypeTTL && d.Interval <= 0 {
		return fmt.Errorf("checks: check %q: interval is required for %s checks", d.ID, d.Type())
	}
	if d.Timeout < 0 || d.Interval < 0 {
		return fmt.Errorf("checks: check %q: negative interval or timeout", d.ID)
	}
	switch d.Status {
	case "", structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	default:
		return fmt.Errorf("checks: check %q: invalid initial status %q", d.ID, d.Status)
	}
	return nil
}

// HealthCheck returns the catalog record for d before its first run.
// Name defaults to "service:<service-id>" or the check ID, as Consul's.
func (d *Definition) HealthCheck(node string) *structs.HealthCheck {
	name := d.Name
	if name == "" {
		if d.ServiceID != "" {
			name = "service:" + d.ServiceID
		} else {
			name = d.ID
		}
	}
	status := d.Status
	if status == "" {
		status = structs.HealthCritical
	}
	return &structs.HealthCheck{
		Node:      node,
		CheckID:   d.ID,
		Name:      name,
		Status:    status,
		Notes:     d.Notes,
		ServiceID: d.ServiceID,
		Type:      d.Type(),
	}
}

// ReapAfter is DeregisterCriticalServiceAfter raised to
// MinDeregisterCriticalServiceAfter, or 0 when unset: the value the runtime
// hands to local.State.SetDeregisterCriticalServiceAfter.
func (d *Definition) ReapAfter() time.Duration {
	if d.DeregisterCriticalServiceAfter <= 0 {
		return 0
	}
	return max(d.DeregisterCriticalServiceAfter, MinDeregisterCriticalServiceAfter)
}

// Options carry what New needs beyond the definition.
type Options struct {
	// AllowScripts permits Args checks (--enable-local-script-checks).
	AllowScripts bool
	// Logger is named by the caller; nil means no logging.
	Logger *zap.Logger
}

// New builds the runner for d. It does not start it. For a TTL check the
// result is a *TTL, which the HTTP API's pass/warn/fail endpoints drive.
func New(d Definition, n Notifier, opts Options) (Runner, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if n == nil {
		return nil, errors.New("checks: nil Notifier")
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.With(zap.String("check", d.ID))
	s := Schedule{Interval: d.Interval, Timeout: d.Timeout}
	if d.Type() != TypeTTL && s.Interval < MinInterval {
		logger.Warn("check interval below minimum, raised", zap.Duration("interval", s.Interval), zap.Duration("min", MinInterval))
		s.Interval = MinInterval
	}
	switch d.Type() {
	case TypeHTTP:
		return NewPeriodic(d.ID, NewHTTP(d.HTTP, d.Method, http.Header(d.Header), d.TLSSkipVerify), s, n, logger), nil
	case TypeTCP:
		return NewPeriodic(d.ID, &TCP{Addr: d.TCP}, s, n, logger), nil
	case TypeTTL:
		return NewTTL(d.ID, d.TTL, n, logger), nil
	case TypeScript:
		if !opts.AllowScripts {
			return nil, fmt.Errorf("check %q: %w", d.ID, ErrScriptsDisabled)
		}
		if s.Timeout <= 0 {
			s.Timeout = DefaultScriptTimeout
		}
		return NewPeriodic(d.ID, &Script{Args: d.Args}, s, n, logger), nil
	}
	return nil, fmt.Errorf("checks: check %q: unknown type", d.ID)
}
