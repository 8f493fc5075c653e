package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// watchWait is the blocking time of each watch query: long enough to
	// be cheap, short enough that a lost connection is noticed.
	watchWait = 30 * time.Second
	// watchSlack is added to watchWait for the request's own deadline
	// (the server adds jitter of up to wait/16).
	watchSlack = 15 * time.Second
	// watchRetryMax caps the back-off after a failed query.
	watchRetryMax = 30 * time.Second
)

// WatchCmd is `cairn watch`: run a handler (or print once) whenever a
// view of the catalog, KV store or events changes, Consul's watch types.
type WatchCmd struct {
	Type        string   `required:"" enum:"key,keyprefix,services,nodes,service,checks,event" help:"What to watch: key, keyprefix, services, nodes, service, checks or event."`
	Key         string   `help:"Key to watch (type key)."`
	Prefix      string   `help:"Key prefix to watch (type keyprefix)."`
	Service     string   `help:"Service to watch (type service; optional for checks)."`
	Tag         string   `help:"Service tag filter (type service)."`
	PassingOnly bool     `name:"passingonly" help:"Only instances whose checks pass (type service)."`
	State       string   `help:"Check state filter (type checks): any, passing, warning, critical."`
	Name        string   `help:"Event name (type event; all events when empty)."`
	Datacenter  string   `name:"datacenter" help:"Datacenter to query (default: the agent's)."`
	Stale       bool     `help:"Let any server answer (may be stale)."`
	Handler     []string `arg:"" optional:"" passthrough:"" help:"Command run with the JSON view on stdin on every change; without one, the view is printed once."`
}

func (c *WatchCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, newAPIClient(g), g.stdout(), g.stderr())
}

// query returns the path, parameters and whether the answer is one KV
// entry that Consul's watch hands over unwrapped.
func (c *WatchCmd) query() (path string, q url.Values, single bool, err error) {
	q = readParams(c.Datacenter, c.Stale)
	switch c.Type {
	case "key":
		if c.Key == "" {
			return "", nil, false, fmt.Errorf("--key is required for type key")
		}
		return "/v1/kv/" + strings.TrimPrefix(c.Key, "/"), q, true, nil
	case "keyprefix":
		if c.Prefix == "" {
			return "", nil, false, fmt.Errorf("--prefix is required for type keyprefix")
		}
		q.Set("recurse", "")
		return "/v1/kv/" + strings.TrimPrefix(c.Prefix, "/"), q, false, nil
	case "services":
		return "/v1/catalog/services", q, false, nil
	case "nodes":
		return "/v1/catalog/nodes", q, false, nil
	case "service":
		if c.Service == "" {
			return "", nil, false, fmt.Errorf("--service is required for type service")
		}
		if c.Tag != "" {
			q.Set("tag", c.Tag)
		}
		if c.PassingOnly {
			q.Set("passing", "")
		}
		return "/v1/health/service/" + url.PathEscape(c.Service), q, false, nil
	case "checks":
		if c.Service != "" {
			return "/v1/health/checks/" + url.PathEscape(c.Service), q, false, nil
		}
		state := c.State
		if state == "" {
			state = "any"
		}
		return "/v1/health/state/" + url.PathEscape(state), q, false, nil
	case "event":
		if c.Name != "" {
			q.Set("name", c.Name)
		}
		return "/v1/event/list", q, false, nil
	}
	return "", nil, false, fmt.Errorf("unknown watch type %q", c.Type)
}

func (c *WatchCmd) run(ctx context.Context, api *apiClient, stdout, stderr io.Writer) error {
	path, q, single, err := c.query()
	if err != nil {
		return fail(1, "Error: %v", err)
	}
	var (
		index   uint64
		last    []byte
		first   = true
		backoff = time.Second
	)
	for ctx.Err() == nil {
		body, next, err := api.blockingGet(ctx, path, q, index, watchWait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if first && len(c.Handler) == 0 {
				return fail(1, "Error querying Cairn agent: %v", err)
			}
			fmt.Fprintf(stderr, "Watch query failed, retrying in %s: %v\n", backoff, err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, watchRetryMax)
			continue
		}
		backoff = time.Second
		if next < index {
			next = 0 // the index went backwards (snapshot restore): start over
		}
		index = next
		view := watchView(body, single)
		if !first && bytes.Equal(view, last) {
			continue
		}
		first, last = false, view
		if len(c.Handler) == 0 {
			_, err := stdout.Write(append(view, '\n'))
			return err
		}
		if err := runHandler(ctx, c.Handler, view, index, stdout, stderr); err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "Watch handler failed: %v\n", err)
		}
	}
	return nil
}

// watchView is the JSON handed to the handler: indented as Consul's,
// a single KV entry unwrapped from its list, null when absent.
func watchView(body []byte, single bool) []byte {
	var v any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &v); err != nil {
			return body
		}
	}
	if list, ok := v.([]any); ok && single {
		v = nil
		if len(list) > 0 {
			v = list[0]
		}
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return body
	}
	return out
}

func runHandler(ctx context.Context, handler []string, view []byte, index uint64, stdout, stderr io.Writer) error {
	var cmd *exec.Cmd
	if len(handler) == 1 {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", handler[0])
	} else {
		cmd = exec.CommandContext(ctx, handler[0], handler[1:]...)
	}
	cmd.Stdin = bytes.NewReader(append(view, '\n'))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "CONSUL_INDEX="+strconv.FormatUint(index, 10), "CAIRN_INDEX="+strconv.FormatUint(index, 10))
	return cmd.Run()
}

// blockingGet runs one (blocking when index > 0) query and returns the
// body ("" on 404) and X-Consul-Index.
func (c *apiClient) blockingGet(ctx context.Context, path string, q url.Values, index uint64, wait time.Duration) ([]byte, uint64, error) {
	qq := url.Values{}
	for k, v := range q {
		qq[k] = v
	}
	if index > 0 {
		qq.Set("index", strconv.FormatUint(index, 10))
		qq.Set("wait", wait.String())
	}
	ctx, cancel := context.WithTimeout(ctx, wait+watchSlack)
	defer cancel()
	resp, err := c.rawGet(ctx, path, qq)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		body = nil // absent key: the view is null
	case resp.StatusCode/100 != 2:
		return nil, 0, &apiError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	return body, idx, nil
}
