package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent"
	"github.com/cairnd/cairn/cluster/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the commands' output")

const (
	// agentUpTimeout bounds a dev agent electing itself and serving HTTP.
	agentUpTimeout = 30 * time.Second
	// agentDownTimeout bounds an agent's shutdown after its context ends.
	agentDownTimeout = 20 * time.Second
	// testNode is every test agent's node name, so outputs are golden.
	testNode = "cli-test"
)

// testAgent is a `cairn agent --dev` running in this test process, built
// from an AgentCmd as the CLI builds it, so the commands under test talk
// to the real HTTP API over a real socket.
type testAgent struct {
	HTTPAddr    string
	SerfAddr    string // serf LAN
	SerfWANAddr string
	done        chan error // agent.Run's result, once
}

// startAgent runs agent.Run for cmd (a dev server: cmd.Dev is the
// caller's) with the given config dirs and waits until it has a leader.
// Ports are chosen here; the serf WAN pool is off unless cmd.SerfWANPort
// is set (to anything). It is stopped on cleanup.
func startAgent(t *testing.T, cmd AgentCmd, configDirs ...string) *testAgent {
	t.Helper()
	zero, disabled, bind := 0, -1, "127.0.0.1"
	node := testNode
	cmd.HTTPPort, cmd.ServerPort, cmd.SerfLANPort = &zero, &zero, &zero
	cmd.DNSPort = &disabled
	wan := cmd.SerfWANPort != nil // the caller wants a WAN pool
	cmd.SerfWANPort = &disabled
	if wan {
		cmd.SerfWANPort = &zero
	}
	cmd.Bind, cmd.Client = &bind, &bind
	if cmd.Node == nil {
		cmd.Node = &node
	}
	if cmd.LogLevel == nil {
		quiet := "error" // the agent's stderr; `cairn monitor` has its own level
		cmd.LogLevel = &quiet
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := filepath.Join(t.TempDir(), "ready.json")
	a := &testAgent{done: make(chan error, 1)}
	go func() {
		a.done <- agent.Run(ctx, agent.Options{ConfigDirs: configDirs, Apply: cmd.apply, ReadyFile: ready})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(agentDownTimeout):
			t.Errorf("agent %s did not stop within %v", a.HTTPAddr, agentDownTimeout)
		}
	})
	testutil.Eventually(t, agentUpTimeout, "ready file", func() error {
		select {
		case err := <-a.done:
			a.done <- err
			return fmt.Errorf("agent exited: %v", err)
		default:
		}
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		var addrs agent.Addrs
		if err := json.Unmarshal(b, &addrs); err != nil {
			return err
		}
		a.HTTPAddr, a.SerfAddr, a.SerfWANAddr = addrs.HTTP, addrs.SerfLAN, addrs.SerfWAN
		return nil
	})
	const path = "/v1/status/leader"
	testutil.Eventually(t, agentUpTimeout, "agent "+a.HTTPAddr+" up", func() error {
		select {
		case err := <-a.done:
			a.done <- err
			return fmt.Errorf("agent exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + a.HTTPAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(b.String()) == `""` {
			return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b.String())
		}
		return nil
	})
	return a
}

// devAgent is startAgent for a plain `cairn agent --dev`.
func devAgent(t *testing.T) *testAgent {
	t.Helper()
	return startAgent(t, AgentCmd{Dev: true})
}

// result is what a command did, as the process would show it.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// syncBuffer is a bytes.Buffer a running command may write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runner is a command: every kong command struct has Run(*Globals).
type runner interface{ Run(*Globals) error }

// run calls cmd.Run against the agent at addr with stdin as input and
// maps its error to the exit status and stderr text exactly as main does.
func run(t *testing.T, addr string, cmd runner, stdin string) result {
	t.Helper()
	var out, errOut syncBuffer
	g := &Globals{HTTPAddr: addr, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	code := exitStatus(cmd.Run(g), &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// check runs cmd and compares the result with want (exit code, stdout and
// stderr, where stdout/stderr may be regular expressions prefixed "~").
func check(t *testing.T, name, addr string, cmd runner, stdin string, want result) result {
	t.Helper()
	got := run(t, addr, cmd, stdin)
	if got.code != want.code || !matches(got.stdout, want.stdout) || !matches(got.stderr, want.stderr) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
	return got
}

func matches(got, want string) bool {
	if re, ok := strings.CutPrefix(want, "~"); ok {
		return regexp.MustCompile(re).MatchString(got)
	}
	return got == want
}

// golden compares got with testdata/<name>.golden (go test -update
// rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// unreachable is an HTTP address nothing listens on (port 1, tcpmux,
// is never served here): every command's "agent down" path.
const unreachable = "127.0.0.1:1"

// TestAgentCmdRefusesBadConfig: `cairn agent` with a configuration it
// cannot load exits 1 with the loader's message, before binding anything.
func TestAgentCmdRefusesBadConfig(t *testing.T) {
	bad := configDir(t, `{"ports": {"http": "many"}}`)
	level := "loud"
	for _, c := range []struct {
		name string
		cmd  AgentCmd
		want string
	}{
		{"missing config dir", AgentCmd{Dev: true, ConfigDir: []string{filepath.Join(t.TempDir(), "none")}}, "~^Error: config: config dir .*/none: .*no such file or directory\n$"},
		{"bad config file", AgentCmd{Dev: true, ConfigDir: []string{bad}}, "~^Error: config: .*test.json:[0-9]+: .*ports"},
		{"bad flag value", AgentCmd{Dev: true, LogLevel: &level}, "~^Error: .*loud"},
	} {
		check(t, c.name, "", &c.cmd, "", result{stderr: c.want, code: 1})
	}
}
