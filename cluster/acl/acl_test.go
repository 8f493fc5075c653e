package acl

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) *Rules {
	t.Helper()
	r, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return r
}

const appRules = `
key_prefix "" { policy = "read" }
key_prefix "app/" { policy = "write" }
key_prefix "app/secret/" { policy = "deny" }
key "app/secret/open" { policy = "read" }
service "web" { policy = "read" }
service_prefix "" { policy = "deny" }
node_prefix "" { policy = "read" }
operator = "read"
`

const appRulesJSON = `{
  "key_prefix": {"": {"policy": "read"}, "app/": {"policy": "write"}, "app/secret/": {"policy": "deny"}},
  "key": {"app/secret/open": {"policy": "read"}},
  "service": {"web": {"policy": "read"}},
  "service_prefix": {"": {"policy": "deny"}},
  "node_prefix": {"": {"policy": "read"}},
  "operator": "read"
}`

func TestAuthorizer(t *testing.T) {
	for _, form := range []struct{ name, text string }{{"hcl", appRules}, {"json", appRulesJSON}} {
		a := New(false, mustParse(t, form.text))
		for _, c := range []struct {
			res   Resource
			name  string
			want  Level
			allow bool
		}{
			{ResKey, "other", LevelRead, true},
			{ResKey, "other", LevelWrite, false},
			{ResKey, "app/x", LevelWrite, true},
			{ResKey, "app/secret/x", LevelRead, false},   // longer prefix wins
			{ResKey, "app/secret/open", LevelRead, true}, // exact beats prefix
			{ResKey, "app/secret/open", LevelWrite, false},
			{ResService, "web", LevelRead, true},
			{ResService, "web", LevelWrite, false},
			{ResService, "db", LevelRead, false},
			{ResNode, "n1", LevelRead, true},
			{ResAgent, "n1", LevelRead, false}, // default deny
			{ResOperator, "", LevelRead, true},
			{ResOperator, "", LevelWrite, false},
			{ResKeyring, "", LevelRead, false},
			{ResACL, "", LevelRead, false},
		} {
			if got := a.Allowed(c.res, c.name, c.want); got != c.allow {
				t.Errorf("%s: %s %q %s = %v, want %v", form.name, c.res, c.name, c.want, got, c.allow)
			}
		}
		if a.KeyWritePrefix("app/") {
			t.Errorf("%s: KeyWritePrefix(app/) allowed despite a deny below it", form.name)
		}
		if !a.KeyWritePrefix("app/x/") {
			t.Errorf("%s: KeyWritePrefix(app/x/) refused", form.name)
		}
	}
}

func TestDefaultsAndMerge(t *testing.T) {
	allow := New(true)
	if !allow.Write(ResKey, "x") || !allow.Write(ResOperator, "") || allow.Read(ResACL, "") {
		t.Error("default allow: want write everywhere but acl")
	}
	if DenyAll().Read(ResKey, "x") || !AllowAll().Write(ResACL, "") || !Management().IsManagement() {
		t.Error("DenyAll/AllowAll/Management")
	}
	var nilAuth *Authorizer
	if nilAuth.Read(ResKey, "x") {
		t.Error("nil authorizer allows")
	}
	// Two policies: write + read merge to write; anything + deny is deny.
	a := New(false, mustParse(t, `key "a" { policy = "read" } key "b" { policy = "write" } operator = "read"`),
		mustParse(t, `key "a" { policy = "write" } key "b" { policy = "deny" } operator = "write"`))
	if !a.Write(ResKey, "a") || a.Read(ResKey, "b") || !a.Write(ResOperator, "") {
		t.Error("merge precedence wrong")
	}
	l := New(false, mustParse(t, `key_prefix "k/" { policy = "list" }`))
	if !l.Read(ResKey, "k/1") || !l.Allowed(ResKey, "k/1", LevelList) || l.Write(ResKey, "k/1") {
		t.Error("list level")
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`key "a" { policy = "bogus" }`, `key "a"`},
		{`service "a" { policy = "list" }`, `service "a"`},
		{`operator = "maybe"`, "operator"},
		{`nonsense "a" { policy = "read" }`, "nonsense"},
		{`key "a" {`, "invalid ACL rules"},
		{strings.Repeat(" ", MaxRulesSize+1), "limit"},
	} {
		_, err := Parse(c.text)
		if err == nil || !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q) = %v, want an ErrInvalidRules naming %q", c.text, err, c.want)
		}
	}
	if r, err := Parse("  \n"); err != nil || len(r.Named) != 0 {
		t.Errorf("empty rules: %v %v", r, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(appRules)
	f.Add(appRulesJSON)
	f.Add(`operator = "write" keyring = "read" acl = "read"`)
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidRules) {
				t.Fatalf("error does not wrap ErrInvalidRules: %v", err)
			}
			return
		}
		a := New(false, r)
		for _, rule := range r.Named {
			a.Allowed(rule.Resource, rule.Name, LevelRead)
			if rule.Level > LevelWrite {
				t.Fatalf("level out of range: %v", rule)
			}
		}
	})
}
