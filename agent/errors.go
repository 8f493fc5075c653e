package agent

import (
	"errors"

	agenthttp "github.com/cairnd/cairn/agent/http"
)

// Errors the agent's operations wrap; callers branch on them with
// errors.Is. The text of a wrapped error says what and why.
var (
	// ErrInvalid: the request cannot be carried out as given (a definition
	// that fails validation, a check that is not a TTL check, a keyring
	// operation without gossip encryption, a WAN operation on a client).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the local service or check named does not exist.
	ErrNotFound = errors.New("not found")
)

// apiError hands an agent error to the HTTP API with the class its
// Backend contract names (agent/http cannot import this package: the agent
// builds the API). This is the only place the two vocabularies meet; the
// error's text is kept as is, and agent/http alone maps classes to status
// codes.
func apiError(err error) error {
	var class error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		class = agenthttp.ErrNotFound
	case errors.Is(err, ErrInvalid):
		class = agenthttp.ErrBadRequest
	default:
		return err
	}
	return classified{err, class}
}

// classified is err, also matching class under errors.Is.
type classified struct{ err, class error }

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() []error { return []error{c.err, c.class} }
