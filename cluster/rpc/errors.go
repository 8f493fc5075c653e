package rpc

import (
	"errors"
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// RemoteError is a handler error that is not one of the structs sentinels;
// it carries the server's text.
type RemoteError struct {
	Msg string
}

func (e RemoteError) Error() string { return e.Msg }

// TransportError reports that a Call failed on the wire rather than in the
// handler: the session or stream broke, timed out or sent garbage.
type TransportError struct {
	Method string
	// MaybeSent is false only when the failure happened before any byte of
	// the request was handed to the connection; then the server cannot have
	// run the handler and resending is safe even for writes.
	MaybeSent bool
	Err       error
}

func (e *TransportError) Error() string {
	state := "not sent"
	if e.MaybeSent {
		state = "maybe sent"
	}
	return fmt.Sprintf("rpc: %s (%s): %v", e.Method, state, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// ErrServerClosed is returned by Serve after Close, and by the raft layer.
var ErrServerClosed = errors.New("rpc: server closed")

// errorFromRemote maps an error text received from a server back to a
// structs sentinel when it is one.
func errorFromRemote(msg string) error {
	if err := structs.ErrorFromString(msg); err != nil {
		return err
	}
	return RemoteError{Msg: msg}
}
