package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

// TestACLResolverCacheAndDownPolicy: a client agent caches a resolution
// for token_ttl and, while no server answers, follows down_policy.
func TestACLResolverCacheAndDownPolicy(t *testing.T) {
	var calls atomic.Int32
	var down atomic.Bool
	rpc := func(ctx context.Context, method string, args, reply any) error {
		calls.Add(1)
		if down.Load() {
			return structs.ErrNoServers
		}
		if acl.TokenFromContext(ctx) != "good" {
			*reply.(*structs.ACLResolution) = structs.ACLResolution{}
			return nil
		}
		*reply.(*structs.ACLResolution) = structs.ACLResolution{Found: true, AccessorID: "a", Rules: []string{`key_prefix "app/" { policy = "write" }`}}
		return nil
	}
	for _, c := range []struct {
		down       string
		wantCached bool // after expiry with servers down: the cached rules
		wantAllow  bool // unknown-to-cache token with servers down
	}{
		{config.ACLDownExtendCache, true, false},
		{config.ACLPolicyDeny, false, false},
		{config.ACLPolicyAllow, true, true},
	} {
		down.Store(false)
		calls.Store(0)
		r := &aclResolver{cfg: config.ACL{Enabled: true, DefaultPolicy: "deny", DownPolicy: c.down, TokenTTL: config.Duration(50 * time.Millisecond)}, rpc: rpc, log: zap.NewNop()}
		ctx := context.Background()
		a, err := r.resolve(ctx, "good")
		if err != nil || !a.Write(acl.ResKey, "app/x") || a.Write(acl.ResKey, "x") {
			t.Fatalf("%s: resolve good: %v", c.down, err)
		}
		if _, err := r.resolve(ctx, "good"); err != nil || calls.Load() != 1 {
			t.Fatalf("%s: second resolve within ttl made %d calls, err %v", c.down, calls.Load(), err)
		}
		if _, err := r.resolve(ctx, "bad"); !errors.Is(err, structs.ErrACLNotFound) {
			t.Fatalf("%s: unknown token: %v", c.down, err)
		}
		time.Sleep(60 * time.Millisecond) // let the ttl pass (the subject, not synchronisation)
		down.Store(true)
		a, err = r.resolve(ctx, "good")
		if err != nil || a.Write(acl.ResKey, "app/x") != c.wantCached {
			t.Errorf("%s: expired entry, servers down: write app/x = %v (err %v), want %v", c.down, a.Write(acl.ResKey, "app/x"), err, c.wantCached)
		}
		a, err = r.resolve(ctx, "never-seen")
		if err != nil || a.Write(acl.ResKey, "x") != c.wantAllow {
			t.Errorf("%s: unseen token, servers down: write = %v (err %v), want %v", c.down, a.Write(acl.ResKey, "x"), err, c.wantAllow)
		}
	}
}
