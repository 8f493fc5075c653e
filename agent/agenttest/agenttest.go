package agenttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildTimeout bounds `go build` of the binary in a test.
const buildTimeout = 3 * time.Minute

// Binary builds cmd/cairn (cached by the go build cache) into a temp dir
// and returns its path. Set CAIRN_TEST_BINARY to reuse a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CAIRN_TEST_BINARY"); p != "" {
		return p
	}
	root, err := moduleRoot()
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

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above working directory")
		}
		dir = parent
	}
}

// Ports are drawn below the kernel's ephemeral range (32768–60999 on
// Linux), so that a port the kernel hands to some outgoing connection
// between our probe and the agent's bind cannot collide. Within one test
// process ports are handed out in sequence and never twice (two agents
// started back to back must not both get a port neither has bound yet);
// each process starts at an offset derived from its pid so parallel test
// binaries walk different stretches.
const (
	portRangeLo = 20000
	portRangeHi = 32000
)

// nextPort is the only package-level state here: the cursor that keeps
// this test process from handing out a port twice.
var nextPort atomic.Int64

func claimPort() int {
	if nextPort.Load() == 0 {
		nextPort.CompareAndSwap(0, int64((os.Getpid()*7919)%(portRangeHi-portRangeLo)))
	}
	return portRangeLo + int(nextPort.Add(1)%(portRangeHi-portRangeLo))
}

// FreePorts returns n distinct ports free for TCP and UDP on 127.0.0.1.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > portRangeHi-portRangeLo {
			t.Fatalf("agenttest: no free ports in %d-%d", portRangeLo, portRangeHi)
		}
		port := claimPort()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		pc.Close()
		ports = append(ports, port)
	}
	return ports
}

// Ports of one agent.
type Ports struct {
	DNS, HTTP, Server, SerfLAN, SerfWAN int
}

// NewPorts allocates a full set.
func NewPorts(t testing.TB) Ports {
	p := FreePorts(t, 5)
	return Ports{DNS: p[0], HTTP: p[1], Server: p[2], SerfLAN: p[3], SerfWAN: p[4]}
}

// Flags renders the ports as agent flags.
func (p Ports) Flags() []string {
	return []string{
		"--dns-port", strconv.Itoa(p.DNS), "--http-port", strconv.Itoa(p.HTTP),
		"--server-port", strconv.Itoa(p.Server), "--serf-lan-port", strconv.Itoa(p.SerfLAN),
		"--serf-wan-port", strconv.Itoa(p.SerfWAN),
	}
}

// Proc is one running agent process.
type Proc struct {
	t       testing.TB
	Name    string
	Bin     string
	Args    []string
	Ports   Ports
	DataDir string

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

// Start launches `cairn agent` with args plus --node, ports and
// --data-dir (unless args contain --dev). It is killed on test cleanup.
func Start(t testing.TB, bin, name string, ports Ports, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Name: name, Bin: bin, Ports: ports, log: &LockedBuffer{}}
	full := []string{"agent", "--node", name, "--bind", "127.0.0.1", "--client", "127.0.0.1", "--log-level", "debug"}
	full = append(full, ports.Flags()...)
	dev := false
	for _, a := range args {
		if a == "--dev" {
			dev = true
		}
	}
	if !dev {
		p.DataDir = filepath.Join(t.TempDir(), name)
		full = append(full, "--data-dir", p.DataDir)
	}
	p.Args = append(full, args...)
	p.start()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", p.Name, tail(p.Log(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *Proc) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("agenttest: start %s: %v", p.Name, err)
	}
	ch := make(chan struct{})
	go func() { cmd.Wait(); close(ch) }()
	p.cmd, p.ch = cmd, ch
}

// Restart starts the process again with the same args and data dir.
func (p *Proc) Restart() { p.start() }

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

// DNSAddr is host:port of the DNS server.
func (p *Proc) DNSAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.DNS) }

// RPCAddr is host:port of the server RPC port.
func (p *Proc) RPCAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.Server) }

// SerfAddr is host:port of serf LAN.
func (p *Proc) SerfAddr() string { return "127.0.0.1:" + strconv.Itoa(p.Ports.SerfLAN) }

// WaitFor polls cond every 50 ms until it returns nil or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
}

// WaitLog waits until the process log contains substr.
func (p *Proc) WaitLog(timeout time.Duration, substr string) {
	p.t.Helper()
	WaitFor(p.t, timeout, fmt.Sprintf("%s log %q", p.Name, substr), func() error {
		if strings.Contains(p.Log(), substr) {
			return nil
		}
		return fmt.Errorf("not yet")
	})
}
