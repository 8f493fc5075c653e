package structs

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits on what a write may store. Each is far above real use, so only
// garbage or an attack meets it; each keeps one request from bloating
// every replica's state, every snapshot and every DNS answer.
const (
	// MaxNameLength bounds node names, service names and IDs, check names
	// and IDs and addresses. A DNS name is at most 253 bytes (a label 63),
	// so a longer name could never be looked up anyway; 512 leaves room
	// for IDs built from several names.
	MaxNameLength = 512
	// MaxTagLength bounds one tag; tags are DNS labels in
	// <tag>.<service>.service.consul, so 512 is far above useful.
	MaxTagLength = 512
	// MaxTags bounds the tags of one service instance: each is copied into
	// every check row and answer; real services carry a handful.
	MaxTags = 1024
	// MetaMaxPairs, MetaKeyMaxLength and MetaValueMaxLength are Consul's
	// metadata limits (structs.metaMaxKeyPairs etc.).
	MetaMaxPairs       = 64
	MetaKeyMaxLength   = 128
	MetaValueMaxLength = 512
	// MaxKVKeyLength bounds a KV key. Consul documents no key limit but
	// keys are paths of a few dozen bytes; 10 KiB keeps a key (which is
	// stored in every index entry and listed by ?keys) from rivalling a
	// value, which is capped at MaxKVValueSize.
	MaxKVKeyLength = 10 * 1024
	// MaxKVValueSize is Consul's kv_max_value_size default (512 KiB),
	// enforced by the server as well as the HTTP API so a raw RPC client
	// cannot store more.
	MaxKVValueSize = 512 * 1024
)

// ErrInvalidRequest marks a request refused by validation (HTTP 400).
// Its text travels over RPC and is mapped back by ErrorFromString.
var ErrInvalidRequest = errors.New("invalid request")

// ErrRateLimited refuses a server-port request over limits.request_limits
// (Consul's text); the HTTP API answers it 429.
var ErrRateLimited = errors.New("rate limit exceeded")

// FieldError names the field of a request that failed validation, in the
// JSON spelling of the HTTP API ("Service.Tags[2]", "NodeMeta[rack]").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return ErrInvalidRequest.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalidRequest) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidRequest }

// ValidateText checks that s is valid UTF-8 with no control character
// (NUL, newline, tab, DEL, C1 controls…) and at most max bytes long.
func ValidateText(field, s string, max int) error {
	if len(s) > max {
		return &FieldError{field, fmt.Sprintf("%d bytes long, at most %d allowed", len(s), max)}
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return &FieldError{field, fmt.Sprintf("not valid UTF-8 (byte %d)", i)}
			}
		}
		if unicode.IsControl(r) {
			return &FieldError{field, fmt.Sprintf("contains control character %U at byte %d", r, i)}
		}
	}
	return nil
}

// ValidateName is ValidateText with MaxNameLength.
func ValidateName(field, s string) error { return ValidateText(field, s, MaxNameLength) }

// ValidateTags checks a tag list.
func ValidateTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return &FieldError{field, fmt.Sprintf("%d tags, at most %d allowed", len(tags), MaxTags)}
	}
	for i, t := range tags {
		if err := ValidateText(field+"["+strconv.Itoa(i)+"]", t, MaxTagLength); err != nil {
			return err
		}
	}
	return nil
}

// ValidateMeta checks a metadata map: Consul's pair, key and value limits,
// and text rules on keys (values are free text but must be UTF-8).
func ValidateMeta(field string, m map[string]string) error {
	if len(m) > MetaMaxPairs {
		return &FieldError{field, fmt.Sprintf("%d pairs, at most %d allowed", len(m), MetaMaxPairs)}
	}
	for k, v := range m {
		if k == "" {
			return &FieldError{field, "empty key"}
		}
		if err := ValidateText(field+" key", k, MetaKeyMaxLength); err != nil {
			return err
		}
		if len(v) > MetaValueMaxLength || !utf8.ValidString(v) {
			return &FieldError{field + "[" + k + "]", fmt.Sprintf("value must be valid UTF-8 of at most %d bytes", MetaValueMaxLength)}
		}
	}
	return nil
}

// validateStringMap checks keys and values of a map as names (tagged
// addresses).
func validateStringMap(field string, m map[string]string) error {
	for k, v := range m {
		if err := ValidateName(field+" key", k); err != nil {
			return err
		}
		if err := ValidateName(field+"["+k+"]", v); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks every name, tag and metadata field of a registration.
// Free text (check notes and output) is not checked: a script's output
// may be anything, and refusing it would stop the check from syncing.
func (r *RegisterRequest) Validate() error {
	for _, f := range []struct{ field, val string }{
		{"Node", r.Node}, {"ID", r.ID}, {"Address", r.Address}, {"Datacenter", r.Datacenter},
	} {
		if err := ValidateName(f.field, f.val); err != nil {
			return err
		}
	}
	if err := validateStringMap("TaggedAddresses", r.TaggedAddresses); err != nil {
		return err
	}
	if err := ValidateMeta("NodeMeta", r.NodeMeta); err != nil {
		return err
	}
	if r.Service != nil {
		if err := r.Service.Validate("Service."); err != nil {
			return err
		}
	}
	if r.Check != nil {
		if err := r.Check.Validate("Check."); err != nil {
			return err
		}
	}
	for i, c := range r.Checks {
		if c == nil {
			continue
		}
		if err := c.Validate("Checks[" + strconv.Itoa(i) + "]."); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a service instance; prefix is prepended to field names.
func (s *NodeService) Validate(prefix string) error {
	for _, f := range []struct{ field, val string }{
		{"ID", s.ID}, {"Service", s.Service}, {"Address", s.Address},
	} {
		if err := ValidateName(prefix+f.field, f.val); err != nil {
			return err
		}
	}
	if err := ValidateTags(prefix+"Tags", s.Tags); err != nil {
		return err
	}
	return ValidateMeta(prefix+"Meta", s.Meta)
}

// Validate checks a health check's names; prefix is prepended to field
// names.
func (c *HealthCheck) Validate(prefix string) error {
	for _, f := range []struct{ field, val string }{
		{"Node", c.Node}, {"CheckID", c.CheckID}, {"Name", c.Name}, {"Status", c.Status},
		{"ServiceID", c.ServiceID}, {"ServiceName", c.ServiceName}, {"Type", c.Type},
	} {
		if err := ValidateName(prefix+f.field, f.val); err != nil {
			return err
		}
	}
	return ValidateTags(prefix+"ServiceTags", c.ServiceTags)
}

// Validate checks a deregistration's names.
func (r *DeregisterRequest) Validate() error {
	for _, f := range []struct{ field, val string }{
		{"Node", r.Node}, {"ServiceID", r.ServiceID}, {"CheckID", r.CheckID}, {"Datacenter", r.Datacenter},
	} {
		if err := ValidateName(f.field, f.val); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a KV write: the key is valid UTF-8 (JSON listings could
// not return it faithfully otherwise) of at most MaxKVKeyLength bytes, the
// value at most MaxKVValueSize. Control characters are allowed in keys, as
// in Consul.
func (r *KVSRequest) Validate() error {
	if err := ValidateName("Datacenter", r.Datacenter); err != nil {
		return err
	}
	k := r.DirEnt.Key
	if len(k) > MaxKVKeyLength {
		return &FieldError{"Key", fmt.Sprintf("%d bytes long, at most %d allowed", len(k), MaxKVKeyLength)}
	}
	if !utf8.ValidString(k) {
		return &FieldError{"Key", "not valid UTF-8"}
	}
	if n := len(r.DirEnt.Value); n > MaxKVValueSize {
		return &FieldError{"Value", fmt.Sprintf("%d bytes long, at most %d allowed", n, MaxKVValueSize)}
	}
	return nil
}

// Validator is a write request that can check itself.
type Validator interface{ Validate() error }

// ValidateWrite validates req if it is a Validator; servers call it where
// writes enter, so a raw RPC client cannot bypass the HTTP API's checks.
func ValidateWrite(req any) error {
	if v, ok := req.(Validator); ok {
		return v.Validate()
	}
	return nil
}
