package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestACLConfig(t *testing.T) {
	c := DefaultConfig()
	if err := DecodeStrict([]byte(`{"acl": {"enabled": true, "default_policy": "deny", "down_policy": "deny", "token_ttl": "45s",
		"tokens": {"initial_management": "m", "agent": "a", "default": "d"}}}`), c); err != nil {
		t.Fatal(err)
	}
	if !c.ACL.Enabled || c.ACL.DefaultPolicy != "deny" || c.ACL.DownPolicy != "deny" || c.ACL.TokenTTL.Duration() != 45*time.Second ||
		c.ACL.Tokens != (ACLTokens{InitialManagement: "m", Agent: "a", Default: "d"}) {
		t.Fatalf("decoded %+v", c.ACL)
	}
	if err := c.ACL.validate(); err != nil {
		t.Fatal(err)
	}
	if err := DecodeStrict([]byte(`{"acl": {"tokens": {"master": "legacy"}}}`), c); err != nil || c.ACL.Tokens.InitialManagement != "legacy" {
		t.Fatalf("legacy master: %v %q", err, c.ACL.Tokens.InitialManagement)
	}
	for _, bad := range []struct{ json, want string }{
		{`{"acl": {"default_policy": "maybe"}}`, "acl.default_policy"},
		{`{"acl": {"down_policy": "cache"}}`, "acl.down_policy"},
		{`{"acl": {"token_ttl": "-1s"}}`, "acl.token_ttl"},
	} {
		c := DefaultConfig()
		err := DecodeStrict([]byte(bad.json), c)
		if err == nil {
			err = c.ACL.validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error naming %s", bad.json, err, bad.want)
		}
	}
	if err := DecodeStrict([]byte(`{"acl": {"polcy": "x"}}`), DefaultConfig()); err == nil {
		t.Error("unknown acl key accepted")
	}
}

// TestPackagedACLExamples: the packaged TLS + ACL examples decode with
// strict decoding and carry a valid acl block with default deny.
func TestPackagedACLExamples(t *testing.T) {
	for _, name := range []string{"server-tls-acl.json", "client-tls-acl.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		if err := DecodeStrict(b, c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.ACL.validate(); err != nil || !c.ACL.Enabled || c.ACL.DefaultPolicy != ACLPolicyDeny {
			t.Errorf("%s: acl %+v: %v", name, c.ACL, err)
		}
		if tc := c.TLSConfig(); !tc.VerifyOutgoing || !tc.VerifyServerHostname {
			t.Errorf("%s: tls %+v", name, tc)
		}
	}
}
