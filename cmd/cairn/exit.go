package main

import (
	"errors"
	"fmt"
	"io"
)

// exitError ends a command with a chosen process exit status. Commands
// return it instead of calling os.Exit, so their defers (job clean-up,
// closed bodies, stopped signal handlers) run; main alone exits.
type exitError struct {
	code int
	msg  string // printed to stderr as is (Consul's wording); "" prints nothing
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// fail is a failure printed as Consul words it ("Error! ...") with code.
func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// exitCode ends the command with code and prints nothing more: what there
// was to say went to stdout or stderr already (or, as `members` with no
// match, silence is the answer).
func exitCode(code int) error { return &exitError{code: code} }

// exitStatus is the process exit status for a command's result. It prints
// to stderr the failure message: an exitError's text as is, any other
// error after "Error: " with status 1.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 1
}
