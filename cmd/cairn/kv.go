package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// KVCmd groups the key-value store commands (Consul's `consul kv`).
type KVCmd struct {
	Get    KVGetCmd    `cmd:"" help:"Read a value (or, with --recurse, every value under a prefix)."`
	Put    KVPutCmd    `cmd:"" help:"Write a value."`
	Delete KVDeleteCmd `cmd:"" help:"Delete a key (or, with --recurse, a prefix)."`
}

// kvEntry is the /v1/kv JSON the CLI reads.
type kvEntry struct {
	Key         string
	Value       []byte
	Flags       uint64
	LockIndex   uint64
	Session     string
	CreateIndex uint64
	ModifyIndex uint64
}

// kvPath is the API path of key; Consul's CLI strips one leading slash.
func kvPath(key string) string {
	key = strings.TrimPrefix(key, "/")
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/kv/" + strings.Join(segs, "/")
}

// KVGetCmd is `cairn kv get`.
type KVGetCmd struct {
	Recurse   bool   `help:"Read every key under the prefix KEY, printed as key:value."`
	Detailed  bool   `help:"Print every field of the entry, not just the value."`
	Keys      bool   `help:"List the keys under the prefix KEY instead of values."`
	Separator string `default:"/" help:"With --keys, group keys up to this separator."`
	Key       string `arg:"" optional:"" help:"Key (or prefix) to read."`
}

func (c *KVGetCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *KVGetCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	key := strings.TrimPrefix(c.Key, "/")
	if key == "" && !c.Recurse && !c.Keys {
		return fail(1, "Error! Missing KEY argument")
	}
	q := url.Values{}
	switch {
	case c.Keys:
		q.Set("keys", "")
		if c.Separator != "" {
			q.Set("separator", c.Separator)
		}
		var keys []string
		if _, err := api.getJSON(ctx, kvPath(key), q, &keys); err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Fprintln(stdout, k)
		}
		return nil
	case c.Recurse:
		q.Set("recurse", "")
	}
	var entries []kvEntry
	found, err := api.getJSON(ctx, kvPath(key), q, &entries)
	if err != nil {
		return err
	}
	if !found || len(entries) == 0 {
		if c.Recurse {
			return nil
		}
		return fail(1, "Error! No key exists at: %s", key)
	}
	for i, e := range entries {
		switch {
		case c.Detailed:
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printKVDetailed(stdout, &e)
		case c.Recurse:
			fmt.Fprintf(stdout, "%s:%s\n", e.Key, e.Value)
		default:
			fmt.Fprintf(stdout, "%s\n", e.Value)
		}
	}
	return nil
}

func printKVDetailed(w io.Writer, e *kvEntry) {
	tw := tabwriter.NewWriter(w, 0, 4, 6, ' ', 0)
	session := e.Session
	if session == "" {
		session = "-"
	}
	fmt.Fprintf(tw, "CreateIndex\t%d\n", e.CreateIndex)
	fmt.Fprintf(tw, "Flags\t%d\n", e.Flags)
	fmt.Fprintf(tw, "Key\t%s\n", e.Key)
	fmt.Fprintf(tw, "LockIndex\t%d\n", e.LockIndex)
	fmt.Fprintf(tw, "ModifyIndex\t%d\n", e.ModifyIndex)
	fmt.Fprintf(tw, "Session\t%s\n", session)
	fmt.Fprintf(tw, "Value\t%s\n", e.Value)
	_ = tw.Flush()
}

// KVPutCmd is `cairn kv put`.
type KVPutCmd struct {
	CAS         bool    `name:"cas" help:"Write only if the key's modify index equals --modify-index (0: only if absent)."`
	ModifyIndex *uint64 `name:"modify-index" help:"Index for --cas."`
	Flags       uint64  `help:"Opaque flags stored with the value."`
	Acquire     bool    `help:"Take the lock on the key for --session (creating the key if absent)."`
	Release     bool    `help:"Give up --session's lock on the key."`
	Session     string  `help:"Session ID for --acquire or --release."`
	Key         string  `arg:"" help:"Key to write."`
	Value       string  `arg:"" optional:"" help:"Value; '-' reads stdin, '@file' reads a file. Empty if omitted."`
}

func (c *KVPutCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdin(), g.stdout())
}

func (c *KVPutCmd) run(ctx context.Context, api *apiClient, stdin io.Reader, stdout io.Writer) error {
	key := strings.TrimPrefix(c.Key, "/")
	if key == "" {
		return fail(1, "Error! Missing KEY argument")
	}
	if c.CAS && c.ModifyIndex == nil {
		return fail(1, "Must specify --modify-index with --cas!")
	}
	switch {
	case (c.Acquire || c.Release) && c.Session == "":
		return fail(1, "Error! Missing --session (needed by --acquire and --release)")
	case c.Acquire && c.Release, (c.Acquire || c.Release) && c.CAS:
		return fail(1, "Error! Use only one of --acquire, --release and --cas")
	case c.Session != "" && !c.Acquire && !c.Release:
		return fail(1, "Error! --session needs --acquire or --release")
	}
	value, err := readValue(c.Value, stdin)
	if err != nil {
		return fail(1, "Error! %v", err)
	}
	q := url.Values{}
	if c.Flags != 0 {
		q.Set("flags", strconv.FormatUint(c.Flags, 10))
	}
	if c.CAS {
		q.Set("cas", strconv.FormatUint(*c.ModifyIndex, 10))
	}
	switch {
	case c.Acquire:
		q.Set("acquire", c.Session)
	case c.Release:
		q.Set("release", c.Session)
	}
	b, _, err := api.do(ctx, http.MethodPut, kvPath(key), q, bytes.NewReader(value))
	if err != nil {
		return fail(1, "Error! Failed writing data: %v", err)
	}
	ok := strings.TrimSpace(string(b)) == "true"
	switch {
	case c.Acquire && !ok:
		return fail(1, "Error! Did not acquire lock on %s", key)
	case c.Acquire:
		fmt.Fprintf(stdout, "Success! Lock acquired on: %s\n", key)
		return nil
	case c.Release && !ok:
		return fail(1, "Error! Did not release lock on %s", key)
	case c.Release:
		fmt.Fprintf(stdout, "Success! Lock released on: %s\n", key)
		return nil
	}
	if strings.TrimSpace(string(b)) != "true" {
		return fail(1, "Error! Did not write to %s: CAS failed", key)
	}
	fmt.Fprintf(stdout, "Success! Data written to: %s\n", key)
	return nil
}

// readValue resolves Consul's value forms: "-" stdin, "@path" a file.
func readValue(v string, stdin io.Reader) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(stdin)
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return nil, fmt.Errorf("reading value: %w", err)
		}
		return b, nil
	}
	return []byte(v), nil
}

// KVDeleteCmd is `cairn kv delete`.
type KVDeleteCmd struct {
	Recurse     bool    `help:"Delete every key under the prefix KEY."`
	CAS         bool    `name:"cas" help:"Delete only if the key's modify index equals --modify-index."`
	ModifyIndex *uint64 `name:"modify-index" help:"Index for --cas."`
	Key         string  `arg:"" optional:"" help:"Key (or prefix) to delete."`
}

func (c *KVDeleteCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *KVDeleteCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	key := strings.TrimPrefix(c.Key, "/")
	switch {
	case c.CAS && c.Recurse:
		return fail(1, "Cannot specify both --cas and --recurse!")
	case c.CAS && c.ModifyIndex == nil:
		return fail(1, "Must specify --modify-index with --cas!")
	case key == "" && !c.Recurse:
		return fail(1, "Error! Missing KEY argument")
	}
	q := url.Values{}
	if c.Recurse {
		q.Set("recurse", "")
	}
	if c.CAS {
		q.Set("cas", strconv.FormatUint(*c.ModifyIndex, 10))
	}
	b, _, err := api.do(ctx, http.MethodDelete, kvPath(key), q, nil)
	if err != nil {
		return fail(1, "Error! Failed deleting data: %v", err)
	}
	switch {
	case strings.TrimSpace(string(b)) != "true":
		return fail(1, "Error! Did not delete key %s: CAS failed", key)
	case c.Recurse:
		fmt.Fprintf(stdout, "Success! Deleted keys with prefix: %s\n", key)
	default:
		fmt.Fprintf(stdout, "Success! Deleted key: %s\n", key)
	}
	return nil
}
