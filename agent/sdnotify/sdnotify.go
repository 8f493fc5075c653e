package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// SocketEnv is the environment variable systemd sets to the notification
// socket's address for services with Type=notify (and NotifyAccess != none).
const SocketEnv = "NOTIFY_SOCKET"

// Well-known states from sd_notify(3).
const (
	StateReady     = "READY=1"
	StateReloading = "RELOADING=1"
	StateStopping  = "STOPPING=1"
)

// Notify sends state (one or more newline-separated VAR=value assignments)
// to the socket named by $NOTIFY_SOCKET. It reports whether a message was
// sent: (false, nil) means systemd is not listening, which is not an error.
func Notify(state string) (bool, error) {
	return NotifySocket(os.Getenv(SocketEnv), state)
}

// NotifySocket is Notify with an explicit socket address instead of
// $NOTIFY_SOCKET; an empty address is a no-op.
func NotifySocket(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	// A leading '@' names a Linux abstract socket; Go's UnixAddr uses the
	// same spelling and turns it into the kernel's leading NUL byte.
	if socket[0] != '@' && socket[0] != '/' {
		return false, fmt.Errorf("sdnotify: %s=%q is neither an absolute path nor an abstract name", SocketEnv, socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: dial %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: write %s: %w", socket, err)
	}
	return true, nil
}

// Ready tells systemd that start-up (or a reload) finished: listeners are
// bound and the agent serves requests.
func Ready() (bool, error) {
	return Notify(StateReady)
}

// Reloading tells systemd that the agent began re-reading its
// configuration; call Ready when done. MONOTONIC_USEC lets systemd ≥ 253
// (Type=notify-reload) match the message to the reload it asked for.
func Reloading() (bool, error) {
	return Notify(StateReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd that the agent began an orderly shutdown.
func Stopping() (bool, error) {
	return Notify(StateStopping)
}

// Status sets the free-form status line `systemctl status` shows.
func Status(text string) (bool, error) {
	return Notify("STATUS=" + text)
}

// monotonicUsec reads CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC against.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now().UnixMicro() // never on Linux; keeps the message well-formed
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}
