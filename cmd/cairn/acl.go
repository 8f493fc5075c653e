package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// ACLCmd is `cairn acl` (Consul's `consul acl`).
type ACLCmd struct {
	Bootstrap ACLBootstrapCmd `cmd:"" help:"Create the initial management token (once per cluster)."`
	Policy    ACLPolicyCmd    `cmd:"" help:"Create, list, read and delete ACL policies."`
	Token     ACLTokenCmd     `cmd:"" help:"Create, list, read and delete ACL tokens."`
}

// ACLPolicyCmd groups the policy commands.
type ACLPolicyCmd struct {
	Create ACLPolicyCreateCmd `cmd:"" help:"Create a policy."`
	List   ACLPolicyListCmd   `cmd:"" help:"List policies."`
	Read   ACLPolicyReadCmd   `cmd:"" help:"Show a policy."`
	Delete ACLPolicyDeleteCmd `cmd:"" help:"Delete a policy."`
}

// ACLTokenCmd groups the token commands.
type ACLTokenCmd struct {
	Create ACLTokenCreateCmd `cmd:"" help:"Create a token."`
	List   ACLTokenListCmd   `cmd:"" help:"List tokens."`
	Read   ACLTokenReadCmd   `cmd:"" help:"Show a token."`
	Delete ACLTokenDeleteCmd `cmd:"" help:"Delete a token."`
}

type aclPolicyLink struct {
	ID   string `json:"ID,omitempty"`
	Name string `json:"Name,omitempty"`
}

type aclPolicy struct {
	ID          string   `json:"ID,omitempty"`
	Name        string   `json:"Name"`
	Description string   `json:"Description"`
	Rules       string   `json:"Rules"`
	Datacenters []string `json:"Datacenters"`
}

type aclToken struct {
	AccessorID  string          `json:"AccessorID,omitempty"`
	SecretID    string          `json:"SecretID,omitempty"`
	Description string          `json:"Description"`
	Policies    []aclPolicyLink `json:"Policies"`
	Local       bool            `json:"Local"`
	CreateTime  time.Time       `json:"CreateTime"`
}

// sendJSON sends v (nil: no body) with method and decodes the answer.
func (c *apiClient) sendJSON(ctx context.Context, method, path string, v, out any) error {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	b, code, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if code == http.StatusNotFound {
		return fmt.Errorf("%s: not found", path)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func printToken(w io.Writer, t *aclToken) {
	fmt.Fprintf(w, "AccessorID:       %s\n", t.AccessorID)
	fmt.Fprintf(w, "SecretID:         %s\n", t.SecretID)
	fmt.Fprintf(w, "Description:      %s\n", t.Description)
	fmt.Fprintf(w, "Local:            %t\n", t.Local)
	fmt.Fprintf(w, "Create Time:      %s\n", t.CreateTime.Local())
	if len(t.Policies) > 0 {
		fmt.Fprintln(w, "Policies:")
		for _, p := range t.Policies {
			fmt.Fprintf(w, "   %s - %s\n", p.ID, p.Name)
		}
	}
}

func printPolicy(w io.Writer, p *aclPolicy, rules bool) {
	fmt.Fprintf(w, "ID:           %s\n", p.ID)
	fmt.Fprintf(w, "Name:         %s\n", p.Name)
	fmt.Fprintf(w, "Description:  %s\n", p.Description)
	fmt.Fprintf(w, "Datacenters:  %s\n", strings.Join(p.Datacenters, ", "))
	if rules {
		fmt.Fprintf(w, "Rules:\n%s\n", p.Rules)
	}
}

// ACLBootstrapCmd is `cairn acl bootstrap`.
type ACLBootstrapCmd struct{}

func (c *ACLBootstrapCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	var t aclToken
	if err := newAPIClient(g).sendJSON(ctx, http.MethodPut, "/v1/acl/bootstrap", nil, &t); err != nil {
		return fmt.Errorf("Failed ACL bootstrapping: %w", err)
	}
	printToken(g.stdout(), &t)
	return nil
}

// ACLPolicyCreateCmd is `cairn acl policy create`.
type ACLPolicyCreateCmd struct {
	Name        string   `required:"" help:"The new policy's name."`
	Description string   `help:"A description of the policy."`
	Rules       string   `help:"The rules: text, @file to read a file, or - for stdin."`
	ValidDC     []string `name:"valid-datacenter" help:"Datacenters the policy is valid in (all when none)."`
}

func (c *ACLPolicyCreateCmd) Run(g *Globals) error {
	rules, err := readArgValue(c.Rules, g.stdin())
	if err != nil {
		return fmt.Errorf("Error loading rules: %w", err)
	}
	ctx, cancel := cmdContext()
	defer cancel()
	p := aclPolicy{Name: c.Name, Description: c.Description, Rules: rules, Datacenters: c.ValidDC}
	var out aclPolicy
	if err := newAPIClient(g).sendJSON(ctx, http.MethodPut, "/v1/acl/policy", &p, &out); err != nil {
		return fmt.Errorf("Failed to create new policy: %w", err)
	}
	printPolicy(g.stdout(), &out, true)
	return nil
}

// readArgValue is Consul's value convention: @file, - (stdin) or text.
func readArgValue(v string, stdin io.Reader) (string, error) {
	switch {
	case v == "-":
		b, err := io.ReadAll(stdin)
		return string(b), err
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(v[1:])
		return string(b), err
	}
	return v, nil
}

// ACLPolicyListCmd is `cairn acl policy list`.
type ACLPolicyListCmd struct{}

func (c *ACLPolicyListCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	var ps []aclPolicy
	if err := newAPIClient(g).sendJSON(ctx, http.MethodGet, "/v1/acl/policies", nil, &ps); err != nil {
		return fmt.Errorf("Failed to retrieve the policy list: %w", err)
	}
	for i := range ps {
		fmt.Fprintf(g.stdout(), "%s:\n", ps[i].Name)
		printPolicy(indent{g.stdout()}, &ps[i], false)
	}
	return nil
}

// indent prefixes every line with three spaces (Consul's list layout).
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := "   " + strings.ReplaceAll(strings.TrimSuffix(string(p), "\n"), "\n", "\n   ") + "\n"
	if _, err := io.WriteString(i.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// policyRef names a policy by ID or name.
type policyRef struct {
	ID   string `name:"id" help:"The policy's ID."`
	Name string `help:"The policy's name."`
}

func (r policyRef) path() (string, error) {
	switch {
	case r.ID != "":
		return "/v1/acl/policy/" + r.ID, nil
	case r.Name != "":
		return "/v1/acl/policy/name/" + r.Name, nil
	}
	return "", errors.New("Must specify the -id or -name parameter")
}

// ACLPolicyReadCmd is `cairn acl policy read`.
type ACLPolicyReadCmd struct{ policyRef }

func (c *ACLPolicyReadCmd) Run(g *Globals) error {
	path, err := c.path()
	if err != nil {
		return err
	}
	ctx, cancel := cmdContext()
	defer cancel()
	var p aclPolicy
	if err := newAPIClient(g).sendJSON(ctx, http.MethodGet, path, nil, &p); err != nil {
		return fmt.Errorf("Error reading policy: %w", err)
	}
	printPolicy(g.stdout(), &p, true)
	return nil
}

// ACLPolicyDeleteCmd is `cairn acl policy delete`.
type ACLPolicyDeleteCmd struct{ policyRef }

func (c *ACLPolicyDeleteCmd) Run(g *Globals) error {
	path, err := c.path()
	if err != nil {
		return err
	}
	ctx, cancel := cmdContext()
	defer cancel()
	api := newAPIClient(g)
	id := c.ID
	if id == "" {
		var p aclPolicy
		if err := api.sendJSON(ctx, http.MethodGet, path, nil, &p); err != nil {
			return fmt.Errorf("Error looking up policy: %w", err)
		}
		id = p.ID
	}
	if err := api.sendJSON(ctx, http.MethodDelete, "/v1/acl/policy/"+id, nil, nil); err != nil {
		return fmt.Errorf("Error deleting policy %q: %w", id, err)
	}
	fmt.Fprintf(g.stdout(), "Policy %q deleted successfully\n", id)
	return nil
}

// ACLTokenCreateCmd is `cairn acl token create`.
type ACLTokenCreateCmd struct {
	Description string   `help:"A description of the token."`
	PolicyName  []string `name:"policy-name" help:"Name of a policy to link (repeatable)."`
	PolicyID    []string `name:"policy-id" help:"ID of a policy to link (repeatable)."`
	Secret      string   `help:"The secret ID (generated when empty)."`
	Accessor    string   `help:"The accessor ID (generated when empty)."`
	Local       bool     `help:"Create a datacenter-local token."`
}

func (c *ACLTokenCreateCmd) Run(g *Globals) error {
	t := aclToken{AccessorID: c.Accessor, SecretID: c.Secret, Description: c.Description, Local: c.Local, Policies: []aclPolicyLink{}}
	for _, n := range c.PolicyName {
		t.Policies = append(t.Policies, aclPolicyLink{Name: n})
	}
	for _, id := range c.PolicyID {
		t.Policies = append(t.Policies, aclPolicyLink{ID: id})
	}
	ctx, cancel := cmdContext()
	defer cancel()
	var out aclToken
	body := map[string]any{"AccessorID": t.AccessorID, "SecretID": t.SecretID, "Description": t.Description, "Local": t.Local, "Policies": t.Policies}
	if err := newAPIClient(g).sendJSON(ctx, http.MethodPut, "/v1/acl/token", body, &out); err != nil {
		return fmt.Errorf("Failed to create new token: %w", err)
	}
	printToken(g.stdout(), &out)
	return nil
}

// ACLTokenListCmd is `cairn acl token list`.
type ACLTokenListCmd struct{}

func (c *ACLTokenListCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	var ts []aclToken
	if err := newAPIClient(g).sendJSON(ctx, http.MethodGet, "/v1/acl/tokens", nil, &ts); err != nil {
		return fmt.Errorf("Failed to retrieve the token list: %w", err)
	}
	for i := range ts {
		if i > 0 {
			fmt.Fprintln(g.stdout())
		}
		printToken(g.stdout(), &ts[i])
	}
	return nil
}

// ACLTokenReadCmd is `cairn acl token read`.
type ACLTokenReadCmd struct {
	ID   string `name:"id" help:"The token's accessor ID."`
	Self bool   `help:"Read the token given with --token."`
}

func (c *ACLTokenReadCmd) Run(g *Globals) error {
	path := "/v1/acl/token/self"
	if !c.Self {
		if c.ID == "" {
			return errors.New("Must specify the -id parameter (or -self)")
		}
		path = "/v1/acl/token/" + c.ID
	}
	ctx, cancel := cmdContext()
	defer cancel()
	var t aclToken
	if err := newAPIClient(g).sendJSON(ctx, http.MethodGet, path, nil, &t); err != nil {
		return fmt.Errorf("Error reading token: %w", err)
	}
	printToken(g.stdout(), &t)
	return nil
}

// ACLTokenDeleteCmd is `cairn acl token delete`.
type ACLTokenDeleteCmd struct {
	ID string `name:"id" required:"" help:"The token's accessor ID."`
}

func (c *ACLTokenDeleteCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	if err := newAPIClient(g).sendJSON(ctx, http.MethodDelete, "/v1/acl/token/"+c.ID, nil, nil); err != nil {
		return fmt.Errorf("Error deleting token %q: %w", c.ID, err)
	}
	fmt.Fprintf(g.stdout(), "Token %q deleted successfully\n", c.ID)
	return nil
}
