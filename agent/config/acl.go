package config

import (
	"fmt"
	"time"
)

// ACL policies (Consul's names).
const (
	ACLPolicyAllow       = "allow"
	ACLPolicyDeny        = "deny"
	ACLDownExtendCache   = "extend-cache"
	ACLDownAsyncCache    = "async-cache" // Consul's; treated as extend-cache
	DefaultACLTokenTTL   = 30 * time.Second
	DefaultACLDownPolicy = ACLDownExtendCache
)

// ACL is Consul's acl block.
type ACL struct {
	Enabled bool `json:"enabled"`
	// DefaultPolicy applies when no rule of a token matches: allow or deny.
	DefaultPolicy string `json:"default_policy"`
	// DownPolicy is what a client agent does with a token it cannot
	// resolve because no server answers: extend-cache (use the last
	// resolution, else deny), deny, or allow.
	DownPolicy string `json:"down_policy"`
	// TokenTTL is how long a client agent caches a token's resolution.
	TokenTTL Duration  `json:"token_ttl"`
	Tokens   ACLTokens `json:"tokens"`
	// EnableTokenPersistence is Consul's; accepted, cairn never persists
	// tokens set through the API.
	EnableTokenPersistence bool `json:"enable_token_persistence"`
}

// ACLTokens are the agent's configured secrets. They never appear in
// /v1/agent/self or in logs.
type ACLTokens struct {
	// InitialManagement is created by the leader as a management token
	// (Consul's initial_management, formerly master) and bootstraps ACLs.
	InitialManagement string `json:"initial_management" alias:"master"`
	// Agent is the agent's own token: anti-entropy and internal reads.
	Agent string `json:"agent"`
	// Default is used for requests without a token and for DNS.
	Default string `json:"default"`
}

// DefaultACL returns ACLs off, default allow, Consul's TTL and down policy.
func DefaultACL() ACL {
	return ACL{DefaultPolicy: ACLPolicyAllow, DownPolicy: DefaultACLDownPolicy, TokenTTL: Duration(DefaultACLTokenTTL)}
}

func (a *ACL) validate() error {
	switch a.DefaultPolicy {
	case ACLPolicyAllow, ACLPolicyDeny:
	default:
		return fmt.Errorf("acl.default_policy: %q is not one of allow, deny", a.DefaultPolicy)
	}
	switch a.DownPolicy {
	case ACLDownExtendCache, ACLDownAsyncCache, ACLPolicyAllow, ACLPolicyDeny:
	default:
		return fmt.Errorf("acl.down_policy: %q is not one of extend-cache, async-cache, allow, deny", a.DownPolicy)
	}
	if a.TokenTTL < 0 {
		return fmt.Errorf("acl.token_ttl: must not be negative, got %s", a.TokenTTL)
	}
	return nil
}
