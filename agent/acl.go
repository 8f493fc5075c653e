package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

// maxACLCache bounds the client agent's token cache; emptied when full.
const maxACLCache = 4096

// aclResolver is a client agent's cache of token resolutions: a server
// decides what a secret may do (ACL.Resolve), the agent keeps the answer
// for token_ttl and, while no server answers, follows down_policy.
type aclResolver struct {
	cfg config.ACL
	rpc func(ctx context.Context, method string, args, reply any) error
	log *zap.Logger

	mu    sync.Mutex
	cache map[string]aclEntry // by secret; memory only
}

type aclEntry struct {
	authz *acl.Authorizer
	found bool
	at    time.Time
}

func (r *aclResolver) resolve(ctx context.Context, secret string) (*acl.Authorizer, error) {
	r.mu.Lock()
	e, ok := r.cache[secret]
	r.mu.Unlock()
	if ok && time.Since(e.at) < r.cfg.TokenTTL.Duration() {
		return e.result()
	}
	var res structs.ACLResolution
	err := r.rpc(acl.ContextWithToken(ctx, secret), structs.MethodACLResolve, &structs.DCSpecificRequest{}, &res)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.log.Warn("acl: cannot resolve token, applying down_policy", zap.String("down_policy", r.cfg.DownPolicy), zap.Error(err))
		switch r.cfg.DownPolicy {
		case config.ACLPolicyAllow:
			return acl.AllowAll(), nil
		case config.ACLPolicyDeny:
			return acl.DenyAll(), nil
		}
		if ok { // extend-cache: the last answer, however old
			return e.result()
		}
		return acl.DenyAll(), nil
	}
	e = aclEntry{found: res.Found, at: time.Now()}
	switch {
	case res.Management:
		e.authz = acl.Management()
	case res.Found:
		rules := make([]*acl.Rules, 0, len(res.Rules))
		for _, text := range res.Rules {
			if rs, err := acl.Parse(text); err == nil {
				rules = append(rules, rs)
			}
		}
		e.authz = acl.New(r.cfg.DefaultPolicy == config.ACLPolicyAllow, rules...)
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxACLCache {
		r.cache = map[string]aclEntry{}
	}
	r.cache[secret] = e
	r.mu.Unlock()
	return e.result()
}

func (e aclEntry) result() (*acl.Authorizer, error) {
	if !e.found {
		return nil, structs.ErrACLNotFound
	}
	return e.authz, nil
}

// Authorizer resolves the secret ctx carries (none: tokens.default, else
// anonymous) for the agent's own endpoints (agent/http). Servers decide
// from their state; client agents ask a server and cache.
func (a *Agent) Authorizer(ctx context.Context) (*acl.Authorizer, error) {
	if !a.cfg.ACL.Enabled {
		return acl.AllowAll(), nil
	}
	ctx = a.withDefaultToken(ctx)
	if a.srv != nil {
		return a.srv.Authorizer(ctx)
	}
	return a.acl.resolve(ctx, acl.TokenFromContext(ctx))
}

// withDefaultToken gives a request without a token the agent's default
// token (Consul's tokens.default); requests without either are anonymous.
func (a *Agent) withDefaultToken(ctx context.Context) context.Context {
	if acl.TokenFromContext(ctx) == "" && a.cfg.ACL.Tokens.Default != "" {
		return acl.ContextWithToken(ctx, a.cfg.ACL.Tokens.Default)
	}
	return ctx
}

// agentTokenRPC makes the agent's own calls (anti-entropy) with
// tokens.agent, falling back to tokens.default.
type agentTokenRPC struct{ a *Agent }

func (r agentTokenRPC) RPC(ctx context.Context, method string, args, reply any) error {
	if t := r.a.cfg.ACL.Tokens.Agent; t != "" && acl.TokenFromContext(ctx) == "" {
		ctx = acl.ContextWithToken(ctx, t)
	}
	return r.a.RPC(ctx, method, args, reply)
}
