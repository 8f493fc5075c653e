package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// buildTimeout bounds `go build` of the binary in a test. A cold build
// competes with the whole suite's compiles and race-enabled tests for the
// machine's cores: it took over 3 minutes on a loaded 2-core machine (a
// clean-clone CI run failed TestACLE2E that way). A hung build is still
// caught, well inside the package's test timeout.
const buildTimeout = 10 * time.Minute

// Binary builds cmd/cairn (cached by the go build cache) into a temp dir
// and returns its path. Set CAIRN_TEST_BINARY to reuse a prebuilt binary.
// Under -short it skips the test (see the package doc).
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs agent processes (long); skipped under -short")
	}
	if p := os.Getenv("CAIRN_TEST_BINARY"); p != "" {
		return p
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatalf("agenttest: %v", err)
	}
	out := filepath.Join(t.TempDir(), "cairn")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/cairn")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	done := make(chan error, 1)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatalf("agenttest: go build: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agenttest: go build: %v\n%s", err, buf.String())
		}
	case <-time.After(buildTimeout):
		cmd.Process.Kill()
		t.Fatalf("agenttest: go build timed out")
	}
	return out
}

// Ports of one agent. Zero means "the kernel picks" (config.PortAny),
// except for HTTPS, which is off unless a test passes --https-port (a
// restart then keeps the bound port).
type Ports struct {
	DNS, HTTP, Server, SerfLAN, SerfWAN, HTTPS int
}

// Flags renders the ports as agent flags.
func (p Ports) Flags() []string {
	out := []string{
		"--dns-port", strconv.Itoa(p.DNS), "--http-port", strconv.Itoa(p.HTTP),
		"--server-port", strconv.Itoa(p.Server), "--serf-lan-port", strconv.Itoa(p.SerfLAN),
		"--serf-wan-port", strconv.Itoa(p.SerfWAN),
	}
	if p.HTTPS != 0 {
		out = append(out, "--https-port", strconv.Itoa(p.HTTPS))
	}
	return out
}

// Proc is one running agent process.
type Proc struct {
	t    testing.TB
	Name string
	Bin  string
	// Args are the command line without the port and ready-file flags,
	// which start adds.
	Args []string
	// Ports are the bound ports once Start (or Restart) returned; zero
	// when the process exited before it was ready.
	Ports   Ports
	DataDir string
	// ReadyFile is the agent's --ready-file.
	ReadyFile string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *LockedBuffer
	ch  chan struct{}
}

// LockedBuffer is a bytes.Buffer safe for a process writing while the
// test reads. The zero value is ready to use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns the contents written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// readyTimeout bounds an agent's start up to its ready file: it binds
// and writes at once, but a loaded CI machine can be slow.
const readyTimeout = 60 * time.Second

// StartAgent launches `cairn agent` with args plus --node, --data-dir
// (unless args contain --dev) and port 0 for every listener, and returns
// once the agent is ready (Ports then hold the bound ports) or has exited
// (a test of a failing start checks Exited and Log). It is killed on test
// cleanup.
func StartAgent(t testing.TB, bin, name string, args ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	p := &Proc{t: t, Name: name, Bin: bin, log: &LockedBuffer{}, ReadyFile: filepath.Join(dir, "ready.json")}
	full := []string{"agent", "--node", name, "--bind", "127.0.0.1", "--client", "127.0.0.1", "--log-level", "debug"}
	dev := false
	for _, a := range args {
		if a == "--dev" {
			dev = true
		}
	}
	if !dev {
		p.DataDir = filepath.Join(dir, name)
		full = append(full, "--data-dir", p.DataDir)
	}
	p.Args = append(full, args...)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", p.Name, tail(p.Log(), 6000))
		}
	})
	p.start()
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs the agent on p.Ports and waits until it is ready or exited.
func (p *Proc) start() {
	p.t.Helper()
	if err := os.Remove(p.ReadyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.t.Fatalf("agenttest: %s: %v", p.Name, err)
	}
	p.mu.Lock()
	// Port flags go first so that a test's own flags (e.g. --dns-port -1)
	// win: kong keeps the last value of a repeated flag.
	args := append([]string{p.Args[0]}, p.Ports.Flags()...)
	args = append(append(args, "--ready-file", p.ReadyFile), p.Args[1:]...)
	cmd := exec.Command(p.Bin, args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = testutil.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("agenttest: start %s: %v", p.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.cmd, p.ch = cmd, exited
	p.mu.Unlock()

	var addrs readyAddrs
	err := testutil.Wait(context.Background(), readyTimeout, func() error {
		select {
		case <-exited:
			return nil // a failing start: the test looks at Exited and Log
		default:
		}
		b, err := os.ReadFile(p.ReadyFile)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &addrs)
	})
	if err != nil {
		p.t.Fatalf("agenttest: %s not ready after %v: %v\n%s", p.Name, readyTimeout, err, tail(p.Log(), 3000))
	}
	if p.Exited() {
		return
	}
	ports, err := addrs.ports()
	if err != nil {
		p.t.Fatalf("agenttest: %s ready file: %v", p.Name, err)
	}
	p.Ports = ports
}

// readyAddrs is the agent's ready file (agent.Addrs).
type readyAddrs struct {
	DNS     string `json:"dns"`
	HTTP    string `json:"http"`
	HTTPS   string `json:"https"`
	Server  string `json:"server"`
	SerfLAN string `json:"serf_lan"`
	SerfWAN string `json:"serf_wan"`
}

func (r readyAddrs) ports() (Ports, error) {
	var out Ports
	for _, f := range []struct {
		addr string
		dst  *int
	}{{r.DNS, &out.DNS}, {r.HTTP, &out.HTTP}, {r.HTTPS, &out.HTTPS}, {r.Server, &out.Server}, {r.SerfLAN, &out.SerfLAN}, {r.SerfWAN, &out.SerfWAN}} {
		if f.addr == "" {
			continue // not run by this agent (server port on a client...): 0
		}
		_, port, err := net.SplitHostPort(f.addr)
		if err != nil {
			return Ports{}, err
		}
		if *f.dst, err = strconv.Atoi(port); err != nil {
			return Ports{}, fmt.Errorf("address %q: %w", f.addr, err)
		}
	}
	return out, nil
}

// Restart starts the process again with the same args, data dir and
// bound ports (peers know it by them), and waits until it is ready.
func (p *Proc) Restart() {
	p.t.Helper()
	p.start()
}

// Kill sends SIGKILL and waits for exit.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits up to 20 s, then SIGKILL.
func (p *Proc) Stop() {
	if !p.signal(syscall.SIGTERM, 20*time.Second) {
		p.Kill()
	}
}

// Signal sends sig without waiting.
func (p *Proc) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
	}
}

func (p *Proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, ch := p.cmd, p.ch
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-ch:
		return true
	case <-time.After(wait):
		return false
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.ch:
		return true
	default:
		return false
	}
}

// Pid of the running process.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Log returns everything the process printed.
func (p *Proc) Log() string { return p.log.String() }

// HTTPAddr is host:port of the HTTP API.
func (p *Proc) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.HTTP) }

// HTTPSAddr is the agent's HTTPS API address (when --https-port was given).
func (p *Proc) HTTPSAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.HTTPS) }

// DNSAddr is host:port of the DNS server.
func (p *Proc) DNSAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.DNS) }

// RPCAddr is host:port of the server RPC port.
func (p *Proc) RPCAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.Server) }

// SerfAddr is host:port of serf LAN.
func (p *Proc) SerfAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.SerfLAN) }

// WaitLog waits until the process log contains substr.
func (p *Proc) WaitLog(timeout time.Duration, substr string) {
	p.t.Helper()
	testutil.Eventually(p.t, timeout, fmt.Sprintf("%s log %q", p.Name, substr), func() error {
		if strings.Contains(p.Log(), substr) {
			return nil
		}
		return fmt.Errorf("not yet")
	})
}
