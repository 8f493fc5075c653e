package acl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
)

// Level is the access a rule grants. The order matters: a higher level
// includes the lower ones (write ⊃ list ⊃ read), deny grants nothing.
type Level uint8

const (
	LevelDeny Level = iota
	LevelRead
	LevelList
	LevelWrite
)

// String returns the level as rules spell it.
func (l Level) String() string {
	switch l {
	case LevelRead:
		return "read"
	case LevelList:
		return "list"
	case LevelWrite:
		return "write"
	}
	return "deny"
}

// parseLevel accepts the policy spellings of Consul's rule language.
func parseLevel(s string, listOK bool) (Level, error) {
	switch s {
	case "deny":
		return LevelDeny, nil
	case "read":
		return LevelRead, nil
	case "write":
		return LevelWrite, nil
	case "list":
		if listOK {
			return LevelList, nil
		}
	}
	return LevelDeny, fmt.Errorf("invalid policy %q", s)
}

// Resource names a kind of object rules govern.
type Resource uint8

const (
	ResService Resource = iota
	ResNode
	ResKey
	ResAgent
	ResEvent
	ResSession
	ResQuery
	// numNamed counts the resources whose rules carry a name.
	numNamed
)

// The single-level resources.
const (
	ResOperator Resource = numNamed + iota
	ResKeyring
	ResACL
)

var resourceNames = [...]string{"service", "node", "key", "agent", "event", "session", "query"}

// String returns the rule keyword of r.
func (r Resource) String() string {
	switch {
	case r < numNamed:
		return resourceNames[r]
	case r == ResOperator:
		return "operator"
	case r == ResKeyring:
		return "keyring"
	case r == ResACL:
		return "acl"
	}
	return "unknown"
}

// Rule is one named (or prefix) rule of a policy.
type Rule struct {
	Resource Resource
	Name     string
	Prefix   bool
	Level    Level
}

// Rules is a parsed policy: its named rules and the three single-level
// ones (nil when the policy does not mention them).
type Rules struct {
	Named    []Rule
	Operator *Level
	Keyring  *Level
	ACL      *Level
}

// MaxRulesSize bounds a policy's rules text. Consul policies are a few
// KiB; 128 KiB leaves room for generated ones without letting a policy
// bloat the Raft log.
const MaxRulesSize = 128 << 10

// ErrInvalidRules wraps every parse failure.
var ErrInvalidRules = errors.New("invalid ACL rules")

type namedHCL struct {
	Name   string `hcl:",key"`
	Policy string `hcl:"policy"`
	// Intentions is Consul's service rule field; accepted and ignored.
	Intentions string `hcl:"intentions"`
}

type rulesHCL struct {
	Service       []*namedHCL `hcl:"service,expand"`
	ServicePrefix []*namedHCL `hcl:"service_prefix,expand"`
	Node          []*namedHCL `hcl:"node,expand"`
	NodePrefix    []*namedHCL `hcl:"node_prefix,expand"`
	Key           []*namedHCL `hcl:"key,expand"`
	KeyPrefix     []*namedHCL `hcl:"key_prefix,expand"`
	Agent         []*namedHCL `hcl:"agent,expand"`
	AgentPrefix   []*namedHCL `hcl:"agent_prefix,expand"`
	Event         []*namedHCL `hcl:"event,expand"`
	EventPrefix   []*namedHCL `hcl:"event_prefix,expand"`
	Session       []*namedHCL `hcl:"session,expand"`
	SessionPrefix []*namedHCL `hcl:"session_prefix,expand"`
	Query         []*namedHCL `hcl:"query,expand"`
	QueryPrefix   []*namedHCL `hcl:"query_prefix,expand"`
	Operator      string      `hcl:"operator"`
	Keyring       string      `hcl:"keyring"`
	ACL           string      `hcl:"acl"`
}

var knownRule = map[string]bool{
	"service": true, "service_prefix": true, "node": true, "node_prefix": true,
	"key": true, "key_prefix": true, "agent": true, "agent_prefix": true,
	"event": true, "event_prefix": true, "session": true, "session_prefix": true,
	"query": true, "query_prefix": true, "operator": true, "keyring": true, "acl": true,
}

// Parse parses Consul rules in HCL or JSON. Empty rules are valid (a
// policy granting nothing). Errors wrap ErrInvalidRules and name the rule.
func Parse(text string) (*Rules, error) {
	if len(text) > MaxRulesSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidRules, len(text), MaxRulesSize)
	}
	out := &Rules{}
	if strings.TrimSpace(text) == "" {
		return out, nil
	}
	file, err := parseHCL(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRules, oneLine(err.Error()))
	}
	// hcl v1 ignores keys no field names; a misspelt rule must not
	// silently grant nothing (or, under allow, everything).
	if list, ok := file.Node.(*ast.ObjectList); ok {
		for _, item := range list.Items {
			if len(item.Keys) == 0 {
				continue
			}
			k, _ := item.Keys[0].Token.Value().(string)
			if !knownRule[k] {
				return nil, fmt.Errorf("%w: unknown rule %q", ErrInvalidRules, k)
			}
		}
	}
	var raw rulesHCL
	if err := hcl.DecodeObject(&raw, file); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRules, oneLine(err.Error()))
	}
	groups := []struct {
		res    Resource
		prefix bool
		rules  []*namedHCL
	}{
		{ResService, false, raw.Service}, {ResService, true, raw.ServicePrefix},
		{ResNode, false, raw.Node}, {ResNode, true, raw.NodePrefix},
		{ResKey, false, raw.Key}, {ResKey, true, raw.KeyPrefix},
		{ResAgent, false, raw.Agent}, {ResAgent, true, raw.AgentPrefix},
		{ResEvent, false, raw.Event}, {ResEvent, true, raw.EventPrefix},
		{ResSession, false, raw.Session}, {ResSession, true, raw.SessionPrefix},
		{ResQuery, false, raw.Query}, {ResQuery, true, raw.QueryPrefix},
	}
	for _, g := range groups {
		kw := g.res.String()
		if g.prefix {
			kw += "_prefix"
		}
		for _, r := range g.rules {
			if r == nil {
				continue
			}
			lvl, err := parseLevel(r.Policy, g.res == ResKey)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q: %v", ErrInvalidRules, kw, r.Name, err)
			}
			out.Named = append(out.Named, Rule{Resource: g.res, Name: r.Name, Prefix: g.prefix, Level: lvl})
		}
	}
	for _, s := range []struct {
		kw  string
		v   string
		dst **Level
	}{{"operator", raw.Operator, &out.Operator}, {"keyring", raw.Keyring, &out.Keyring}, {"acl", raw.ACL, &out.ACL}} {
		if s.v == "" {
			continue
		}
		lvl, err := parseLevel(s.v, false)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidRules, s.kw, err)
		}
		*s.dst = &lvl
	}
	return out, nil
}

// parseHCL is hcl.Parse made safe: hcl v1's JSON scanner panics on some
// truncated escapes (`{"\0`, found by FuzzParse), and rules arrive from
// the network.
func parseHCL(text string) (f *ast.File, err error) {
	defer func() {
		if v := recover(); v != nil {
			f, err = nil, fmt.Errorf("malformed rules (parser failed: %v)", v)
		}
	}()
	return hcl.Parse(text)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
