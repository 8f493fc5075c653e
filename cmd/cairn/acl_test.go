package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// runToken is run with an ACL token in the globals.
func runToken(t *testing.T, addr, token string, cmd runner) result {
	t.Helper()
	var out, errOut syncBuffer
	g := &Globals{HTTPAddr: addr, Token: token, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code := exitStatus(cmd.Run(g), &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

var secretRE = regexp.MustCompile(`(?m)^SecretID:\s+(\S+)$`)
var accessorRE = regexp.MustCompile(`(?m)^AccessorID:\s+(\S+)$`)

func field(t *testing.T, re *regexp.Regexp, out string) string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, out)
	}
	return m[1]
}

// TestACLCommands drives `cairn acl …` against a dev agent with
// default_policy = "deny".
func TestACLCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acl.json"), []byte(`{"acl": {"enabled": true, "default_policy": "deny"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, AgentCmd{Dev: true}, dir)
	boot := runToken(t, a.HTTPAddr, "", &ACLBootstrapCmd{})
	if boot.code != 0 || !strings.Contains(boot.stdout, "global-management") {
		t.Fatalf("bootstrap: %s", boot)
	}
	root := field(t, secretRE, boot.stdout)
	if again := runToken(t, a.HTTPAddr, "", &ACLBootstrapCmd{}); again.code == 0 || !strings.Contains(again.stderr, "403") {
		t.Fatalf("second bootstrap: %s", again)
	}
	rules := filepath.Join(t.TempDir(), "app.hcl")
	if err := os.WriteFile(rules, []byte(`key_prefix "app/" { policy = "write" }`), 0o644); err != nil {
		t.Fatal(err)
	}
	pc := runToken(t, a.HTTPAddr, root, &ACLPolicyCreateCmd{Name: "app", Rules: "@" + rules})
	if pc.code != 0 || !strings.Contains(pc.stdout, "Name:         app") || !strings.Contains(pc.stdout, `key_prefix "app/"`) {
		t.Fatalf("policy create: %s", pc)
	}
	if bad := runToken(t, a.HTTPAddr, root, &ACLPolicyCreateCmd{Name: "bad", Rules: `key "x" { policy = "maybe" }`}); bad.code == 0 || !strings.Contains(bad.stderr, "400") {
		t.Errorf("bad rules: %s", bad)
	}
	tc := runToken(t, a.HTTPAddr, root, &ACLTokenCreateCmd{PolicyName: []string{"app"}, Description: "app token"})
	if tc.code != 0 || !strings.Contains(tc.stdout, "- app") || !strings.Contains(tc.stdout, "Description:      app token") {
		t.Fatalf("token create: %s", tc)
	}
	appSecret, appAccessor := field(t, secretRE, tc.stdout), field(t, accessorRE, tc.stdout)

	if r := runToken(t, a.HTTPAddr, appSecret, &KVPutCmd{Key: "app/x", Value: "1"}); r.code != 0 {
		t.Errorf("kv put app/x with app token: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, appSecret, &KVPutCmd{Key: "x", Value: "1"}); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("kv put x with app token: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLTokenListCmd{}); r.code != 0 || !strings.Contains(r.stdout, appAccessor) {
		t.Errorf("token list: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLTokenReadCmd{ID: appAccessor}); r.code != 0 || !strings.Contains(r.stdout, appSecret) {
		t.Errorf("token read: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, appSecret, &ACLTokenReadCmd{Self: true}); r.code != 0 || !strings.Contains(r.stdout, appAccessor) {
		t.Errorf("token read -self: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLPolicyListCmd{}); r.code != 0 || !strings.Contains(r.stdout, "app:\n") || !strings.Contains(r.stdout, "global-management:\n") {
		t.Errorf("policy list: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLPolicyReadCmd{policyRef{Name: "app"}}); r.code != 0 || !strings.Contains(r.stdout, `key_prefix "app/"`) {
		t.Errorf("policy read -name: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLTokenDeleteCmd{ID: appAccessor}); r.code != 0 {
		t.Errorf("token delete: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, appSecret, &KVPutCmd{Key: "app/y", Value: "1"}); r.code == 0 {
		t.Errorf("kv put with deleted token succeeded: %s", r)
	}
	if r := runToken(t, a.HTTPAddr, root, &ACLPolicyDeleteCmd{policyRef{Name: "app"}}); r.code != 0 || !strings.Contains(r.stdout, "deleted successfully") {
		t.Errorf("policy delete: %s", r)
	}
}

// TestTokenFlagAndEnv: --token, then CAIRN_HTTP_TOKEN, then Consul's
// CONSUL_HTTP_TOKEN; Consul's one-dash spelling works.
func TestTokenFlagAndEnv(t *testing.T) {
	parse := func(args ...string) string {
		t.Helper()
		var cli CLI
		p, err := kong.New(&cli, kong.Name("cairn"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(consulArgs(args)); err != nil {
			t.Fatal(err)
		}
		return cli.Token
	}
	t.Setenv("CAIRN_HTTP_TOKEN", "") // restored after the test
	os.Unsetenv("CAIRN_HTTP_TOKEN")
	t.Setenv("CONSUL_HTTP_TOKEN", "consul-env")
	if got := parse("acl", "token", "list"); got != "consul-env" {
		t.Errorf("CONSUL_HTTP_TOKEN: got %q", got)
	}
	t.Setenv("CAIRN_HTTP_TOKEN", "cairn-env")
	if got := parse("acl", "token", "list"); got != "cairn-env" {
		t.Errorf("CAIRN_HTTP_TOKEN over CONSUL_HTTP_TOKEN: got %q", got)
	}
	if got := parse("acl", "token", "list", "-token", "flag"); got != "flag" {
		t.Errorf("-token: got %q", got)
	}
}
