package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket like systemd's and returns a function that
// reads one datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("read datagram: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifyPathSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	recv := listen(t, sock)
	t.Setenv(SocketEnv, sock)

	for _, tc := range []struct {
		name string
		send func() (bool, error)
		want string
	}{
		{"ready", Ready, "READY=1"},
		{"stopping", Stopping, "STOPPING=1"},
		{"status", func() (bool, error) { return Status("serving DNS") }, "STATUS=serving DNS"},
		{"raw", func() (bool, error) { return Notify("READY=1\nSTATUS=x") }, "READY=1\nSTATUS=x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := tc.send()
			if err != nil || !sent {
				t.Fatalf("sent=%v err=%v, want true, nil", sent, err)
			}
			if got := recv(); got != tc.want {
				t.Fatalf("datagram %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReloadingCarriesMonotonicUsec(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	recv := listen(t, sock)
	t.Setenv(SocketEnv, sock)

	before := monotonicUsec()
	if sent, err := Reloading(); err != nil || !sent {
		t.Fatalf("Reloading: sent=%v err=%v", sent, err)
	}
	after := monotonicUsec()
	lines := strings.Split(recv(), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("datagram lines %q, want RELOADING=1 and MONOTONIC_USEC=…", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Fatalf("MONOTONIC_USEC=%d (err %v), want within [%d, %d]", usec, err, before, after)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@cairn-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	recv := listen(t, name)
	t.Setenv(SocketEnv, name)
	if sent, err := Ready(); err != nil || !sent {
		t.Fatalf("Ready: sent=%v err=%v", sent, err)
	}
	if got := recv(); got != "READY=1" {
		t.Fatalf("datagram %q, want READY=1", got)
	}
}

func TestNotifyUnsetIsNoop(t *testing.T) {
	t.Setenv(SocketEnv, "")
	os.Unsetenv(SocketEnv)
	for _, f := range []func() (bool, error){Ready, Reloading, Stopping} {
		if sent, err := f(); sent || err != nil {
			t.Fatalf("sent=%v err=%v, want false, nil without %s", sent, err, SocketEnv)
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	if _, err := NotifySocket("relative/path", StateReady); err == nil {
		t.Fatal("relative socket path: want error")
	}
	missing := filepath.Join(t.TempDir(), "absent.sock")
	if sent, err := NotifySocket(missing, StateReady); err == nil || sent {
		t.Fatalf("absent socket: sent=%v err=%v, want error", sent, err)
	}
}
