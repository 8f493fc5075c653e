package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes Go duration strings
// ("10s", "1h30m"), the form Consul's config files and HTTP API use for
// intervals, timeouts and TTLs. A JSON number is refused: Consul files never
// carry a bare number for these keys, and guessing between seconds and
// nanoseconds would silently produce a wrong value.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q", b)
	}
	*d = Duration(v)
	return nil
}
