package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnd/cairn/agent"
	"github.com/cairnd/cairn/cluster/structs"
)

const (
	// execPoll is how often the job's KV tree is read for new results.
	execPoll = 200 * time.Millisecond
	// execCleanupTimeout bounds deleting the job tree at the end, which
	// also runs after an interrupt.
	execCleanupTimeout = 10 * time.Second
	// maxExecScript bounds a script read from stdin: it is stored in one
	// KV value, replicated through Raft.
	maxExecScript = 256 << 10
)

// ExecCmd is `cairn exec`: run a shell command on every matching agent
// that has remote exec enabled, and print each node's output and exit
// code. The job travels through KV and a "_rexec" user event, as
// Consul's does. It exits 2 when a node exited non-zero or refused.
type ExecCmd struct {
	Node    string        `help:"Regular expression: only nodes whose name matches."`
	Service string        `help:"Regular expression: only nodes with a matching service."`
	Tag     string        `help:"Regular expression: only nodes with a matching service tag (needs --service)."`
	Prefix  string        `default:"_rexec" help:"KV prefix for the job and its results."`
	Wait    time.Duration `default:"2s" help:"Stop after this long with no new results once every acknowledging node finished."`
	Timeout time.Duration `default:"11m" help:"Give up waiting for results after this long."`
	Command []string      `arg:"" passthrough:"" help:"Command to run (through /bin/sh -c); '-' reads a script from stdin."`
}

func (c *ExecCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, newAPIClient(g), g.stdin(), g.stdout(), g.stderr())
}

// execNode is what one node reported so far.
type execNode struct {
	acked    bool
	printed  map[string]bool // output chunk keys already printed
	exit     *int
	refused  string
	reported bool
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (c *ExecCmd) run(ctx context.Context, api *apiClient, stdin io.Reader, stdout, stderr io.Writer) error {
	if c.Tag != "" && c.Service == "" {
		return fail(1, "Cannot provide tag filter without service filter.")
	}
	session := newSessionID()
	prefix := strings.Trim(c.Prefix, "/")
	root := prefix + "/" + session + "/"
	spec := agent.RemoteExecJob{Command: strings.Join(c.Command, " "), Wait: c.Wait}
	if len(c.Command) == 1 && c.Command[0] == "-" {
		// Consul's "-": the script comes from stdin.
		script, err := io.ReadAll(io.LimitReader(stdin, maxExecScript+1))
		if err != nil || len(script) > maxExecScript {
			return fail(1, "Failed to read the script from stdin (max %d bytes): %v", maxExecScript, err)
		}
		spec = agent.RemoteExecJob{Script: script, Wait: c.Wait}
	}
	job, _ := json.Marshal(spec)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), execCleanupTimeout)
		defer cancel()
		if _, _, err := api.do(cctx, http.MethodDelete, "/v1/kv/"+root, url.Values{"recurse": {""}}, nil); err != nil {
			fmt.Fprintf(stderr, "Failed to clean up job %s: %v\n", root, err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, apiTimeout)
	_, _, err := api.do(wctx, http.MethodPut, "/v1/kv/"+root+"job", nil, bytes.NewReader(job))
	cancel()
	if err != nil {
		return fail(1, "Failed to create job file: %v", err)
	}
	payload, _ := json.Marshal(agent.RemoteExecPayload{Prefix: prefix, Session: session})
	wctx, cancel = context.WithTimeout(ctx, apiTimeout)
	_, err = fireEvent(wctx, api, "_rexec", c.Node, c.Service, c.Tag, payload)
	cancel()
	if err != nil {
		return fail(1, "Failed to fire event: %v", err)
	}

	nodes := map[string]*execNode{}
	start := time.Now()
	lastActivity := start
	for {
		select {
		case <-ctx.Done():
			return exitCode(1)
		case <-time.After(execPoll):
		}
		if time.Since(start) > c.Timeout {
			fmt.Fprintln(stderr, "Timed out waiting for nodes to finish.")
			break
		}
		var entries []structs.DirEntry
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		_, err := api.getJSON(rctx, "/v1/kv/"+root, url.Values{"recurse": {""}}, &entries)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "Failed to read results: %v\n", err)
			continue
		}
		if c.collect(root, entries, nodes, stdout) {
			lastActivity = time.Now()
		}
		if time.Since(lastActivity) >= c.Wait && allFinished(nodes) {
			break
		}
	}
	return summarise(nodes, stdout)
}

// summarise prints Consul's closing line; a node that exited non-zero or
// refused makes the command exit 2.
func summarise(nodes map[string]*execNode, stdout io.Writer) error {
	acked, done, bad := 0, 0, 0
	for _, n := range nodes {
		if n.acked {
			acked++
		}
		if n.exit != nil {
			done++
			if *n.exit != 0 {
				bad++
			}
		}
	}
	fmt.Fprintf(stdout, "%d / %d node(s) completed / acknowledged\n", done, acked)
	if bad > 0 {
		return exitCode(2)
	}
	return nil
}

// collect folds the job tree into nodes, printing what is new (output
// lines, then the node's end), and reports whether anything was new.
func (c *ExecCmd) collect(root string, entries []structs.DirEntry, nodes map[string]*execNode, stdout io.Writer) bool {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	changed := false
	byNode := map[string][]structs.DirEntry{}
	var names []string
	for _, e := range entries {
		rel := strings.TrimPrefix(e.Key, root)
		node, rest, ok := strings.Cut(rel, "/")
		if !ok || rel == "job" {
			continue
		}
		if _, seen := byNode[node]; !seen {
			names = append(names, node)
		}
		e.Key = rest
		byNode[node] = append(byNode[node], e)
	}
	for _, name := range names {
		n := nodes[name]
		if n == nil {
			n = &execNode{printed: map[string]bool{}}
			nodes[name] = n
		}
		for _, e := range byNode[name] {
			switch {
			case e.Key == "ack":
				if !n.acked {
					n.acked, changed = true, true
				}
			case strings.HasPrefix(e.Key, "out/"):
				if n.printed[e.Key] {
					continue
				}
				n.printed[e.Key], changed = true, true
				if n.refused != "" || hasKey(byNode[name], "refused") {
					continue // the refusal is printed once, below
				}
				for _, line := range strings.Split(strings.TrimSuffix(string(e.Value), "\n"), "\n") {
					fmt.Fprintf(stdout, "    %s: %s\n", name, line)
				}
			case e.Key == "refused":
				n.refused = string(e.Value)
			case e.Key == "exit":
				if n.exit == nil {
					code, err := strconv.Atoi(strings.TrimSpace(string(e.Value)))
					if err != nil {
						code = -1
					}
					n.exit, changed = &code, true
				}
			}
		}
		if n.exit != nil && !n.reported {
			n.reported = true
			if n.refused != "" {
				fmt.Fprintf(stdout, "==> %s: refused: %s\n", name, n.refused)
			} else {
				fmt.Fprintf(stdout, "==> %s: finished with exit code %d\n", name, *n.exit)
			}
		}
	}
	return changed
}

func hasKey(es []structs.DirEntry, key string) bool {
	for _, e := range es {
		if e.Key == key {
			return true
		}
	}
	return false
}

func allFinished(nodes map[string]*execNode) bool {
	for _, n := range nodes {
		if n.acked && n.exit == nil {
			return false
		}
	}
	return true
}
