package acl

import (
	"context"
	"sort"
	"strings"
)

// Authorizer answers permission questions for one token. It is immutable
// and safe for concurrent use. The zero value denies everything.
type Authorizer struct {
	manage       bool
	defaultLevel Level
	exact        [numNamed]map[string]Level
	prefix       [numNamed][]Rule // longest name first
	operator     *Level
	keyring      *Level
	acl          *Level
}

// AllowAll is the Authorizer of an agent with ACLs disabled.
func AllowAll() *Authorizer { return &Authorizer{manage: true, defaultLevel: LevelWrite} }

// Management is the Authorizer of a token holding the global-management
// policy.
func Management() *Authorizer { return AllowAll() }

// DenyAll denies everything (down_policy "deny", an unknown token).
func DenyAll() *Authorizer { return &Authorizer{} }

// New builds the Authorizer of a token whose policies parsed to rules;
// defaultAllow is the agent's default_policy. Levels of the same rule in
// several policies merge as Consul's: deny, then write, list, read.
func New(defaultAllow bool, rules ...*Rules) *Authorizer {
	a := &Authorizer{}
	if defaultAllow {
		a.defaultLevel = LevelWrite
	}
	type key struct {
		res    Resource
		name   string
		prefix bool
	}
	merged := map[key]Level{}
	var order []key
	for _, rs := range rules {
		if rs == nil {
			continue
		}
		for _, r := range rs.Named {
			k := key{r.Resource, r.Name, r.Prefix}
			if old, ok := merged[k]; ok {
				merged[k] = mergeLevel(old, r.Level)
				continue
			}
			merged[k] = r.Level
			order = append(order, k)
		}
		a.operator = mergePtr(a.operator, rs.Operator)
		a.keyring = mergePtr(a.keyring, rs.Keyring)
		a.acl = mergePtr(a.acl, rs.ACL)
	}
	for _, k := range order {
		if k.prefix {
			a.prefix[k.res] = append(a.prefix[k.res], Rule{Resource: k.res, Name: k.name, Prefix: true, Level: merged[k]})
			continue
		}
		if a.exact[k.res] == nil {
			a.exact[k.res] = map[string]Level{}
		}
		a.exact[k.res][k.name] = merged[k]
	}
	for i := range a.prefix {
		sort.SliceStable(a.prefix[i], func(x, y int) bool { return len(a.prefix[i][x].Name) > len(a.prefix[i][y].Name) })
	}
	return a
}

// mergeLevel is Consul's precedence: deny wins, then the highest grant.
func mergeLevel(a, b Level) Level {
	if a == LevelDeny || b == LevelDeny {
		return LevelDeny
	}
	return max(a, b)
}

func mergePtr(old, l *Level) *Level {
	if l == nil {
		return old
	}
	if old == nil {
		v := *l
		return &v
	}
	v := mergeLevel(*old, *l)
	return &v
}

// IsManagement reports whether the token may do everything.
func (a *Authorizer) IsManagement() bool { return a != nil && a.manage }

// level returns the access to name of kind res: exact rule, else the
// longest matching prefix rule, else the default.
func (a *Authorizer) level(res Resource, name string) Level {
	if a == nil {
		return LevelDeny
	}
	if a.manage {
		return LevelWrite
	}
	if res >= numNamed {
		var p *Level
		switch res {
		case ResOperator:
			p = a.operator
		case ResKeyring:
			p = a.keyring
		case ResACL:
			p = a.acl
		}
		if p != nil {
			return *p
		}
		if res == ResACL {
			return LevelDeny // ACL administration is never a default
		}
		return a.defaultLevel
	}
	if l, ok := a.exact[res][name]; ok {
		return l
	}
	for _, r := range a.prefix[res] {
		if strings.HasPrefix(name, r.Name) {
			return r.Level
		}
	}
	return a.defaultLevel
}

// Allowed reports whether the token has at least want on name of kind res
// (name is ignored for operator, keyring and acl).
func (a *Authorizer) Allowed(res Resource, name string, want Level) bool {
	if want == LevelDeny {
		return true
	}
	return a.level(res, name) >= want
}

// Read and Write are the common questions.
func (a *Authorizer) Read(res Resource, name string) bool  { return a.Allowed(res, name, LevelRead) }
func (a *Authorizer) Write(res Resource, name string) bool { return a.Allowed(res, name, LevelWrite) }

// KeyWritePrefix reports whether every key under prefix is writable: the
// prefix itself, and no rule naming something below it grants less.
func (a *Authorizer) KeyWritePrefix(prefix string) bool {
	if !a.Write(ResKey, prefix) {
		return false
	}
	if a.manage {
		return true
	}
	for name, l := range a.exact[ResKey] {
		if strings.HasPrefix(name, prefix) && l < LevelWrite {
			return false
		}
	}
	for _, r := range a.prefix[ResKey] {
		if len(r.Name) > len(prefix) && strings.HasPrefix(r.Name, prefix) && r.Level < LevelWrite {
			return false
		}
	}
	return true
}

type tokenKey struct{}

// ContextWithToken returns ctx carrying a request's ACL secret.
func ContextWithToken(ctx context.Context, secret string) context.Context {
	return context.WithValue(ctx, tokenKey{}, secret)
}

// TokenFromContext returns the secret ctx carries ("" if none).
func TokenFromContext(ctx context.Context) string {
	s, _ := ctx.Value(tokenKey{}).(string)
	return s
}
