package state

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cairnd/cairn/cluster/structs"
)

// aclTables hold ACL policies and tokens. They sit outside the table
// enum (blocking queries do not watch them) and carry their own index,
// persisted in the snapshot's acl meta record. Guarded by Store.mu.
type aclTables struct {
	policies map[string]*structs.ACLPolicy // by ID
	tokens   map[string]*structs.ACLToken  // by accessor ID
	bySecret map[string]*structs.ACLToken
	// bootstrapIndex is the index of the bootstrap (0: never bootstrapped).
	bootstrapIndex uint64
	index          uint64
}

// aclMeta is the snapshot's acl meta record.
type aclMeta struct {
	BootstrapIndex uint64
	Index          uint64
}

func (t *aclTables) init() {
	if t.policies == nil {
		t.policies = map[string]*structs.ACLPolicy{}
		t.tokens = map[string]*structs.ACLToken{}
		t.bySecret = map[string]*structs.ACLToken{}
	}
}

// ACL write errors.
var (
	ErrACLBuiltin        = errors.New("built-in ACL object cannot be deleted")
	ErrACLDuplicateName  = errors.New("an ACL policy with this name already exists")
	ErrACLDuplicateToken = errors.New("an ACL token with this ID or secret already exists")
)

// ACLBootstrap marks ACLs bootstrapped, creates the global-management
// policy and the anonymous token if missing, and stores tok (a
// management token). A second bootstrap fails with ErrACLBootstrapDone
// and changes nothing.
func (s *Store) ACLBootstrap(idx uint64, tok *structs.ACLToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.acl
	t.init()
	if t.bootstrapIndex != 0 {
		return fmt.Errorf("%w (reset index: %d)", structs.ErrACLBootstrapDone, t.bootstrapIndex)
	}
	if tok.AccessorID == "" || tok.SecretID == "" || t.tokens[tok.AccessorID] != nil || t.bySecret[tok.SecretID] != nil {
		return ErrACLDuplicateToken
	}
	if t.policies[structs.ACLPolicyGlobalManagementID] == nil {
		t.policies[structs.ACLPolicyGlobalManagementID] = &structs.ACLPolicy{
			ID: structs.ACLPolicyGlobalManagementID, Name: structs.ACLPolicyGlobalManagementName,
			Description: "Builtin Policy that grants unlimited access",
			CreateIndex: idx, ModifyIndex: idx,
		}
	}
	if t.tokens[structs.ACLTokenAnonymousID] == nil {
		s.putToken(idx, &structs.ACLToken{
			AccessorID: structs.ACLTokenAnonymousID, SecretID: structs.ACLTokenAnonymousSecret,
			Description: "Anonymous Token", CreateTime: tok.CreateTime,
		})
	}
	c := *tok
	c.Policies = []structs.ACLPolicyLink{{ID: structs.ACLPolicyGlobalManagementID}}
	s.putToken(idx, &c)
	t.bootstrapIndex = idx
	t.index = idx
	return nil
}

// putToken stores tok at idx, keeping CreateIndex of a replaced token.
// Callers hold mu and have checked uniqueness.
func (s *Store) putToken(idx uint64, tok *structs.ACLToken) {
	t := &s.acl
	c := *tok
	c.CreateIndex, c.ModifyIndex = idx, idx
	if old := t.tokens[c.AccessorID]; old != nil {
		c.CreateIndex = old.CreateIndex
		delete(t.bySecret, old.SecretID)
	}
	t.tokens[c.AccessorID] = &c
	t.bySecret[c.SecretID] = &c
}

// ACLPolicySet creates or replaces a policy; names are unique.
func (s *Store) ACLPolicySet(idx uint64, p *structs.ACLPolicy) error {
	if p.ID == "" || p.Name == "" {
		return fmt.Errorf("%w: ACL policy needs an ID and a name", structs.ErrInvalidRequest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.acl
	t.init()
	for _, o := range t.policies {
		if o.Name == p.Name && o.ID != p.ID {
			return fmt.Errorf("%w: %q", ErrACLDuplicateName, p.Name)
		}
	}
	c := *p
	c.CreateIndex, c.ModifyIndex = idx, idx
	if old := t.policies[c.ID]; old != nil {
		c.CreateIndex = old.CreateIndex
	}
	t.policies[c.ID] = &c
	t.index = idx
	return nil
}

// ACLPolicyDelete removes a policy (absent: no-op). The global-management
// policy cannot be deleted.
func (s *Store) ACLPolicyDelete(idx uint64, id string) error {
	if id == structs.ACLPolicyGlobalManagementID {
		return ErrACLBuiltin
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.acl
	t.init()
	if t.policies[id] != nil {
		delete(t.policies, id)
		t.index = idx
	}
	return nil
}

// ACLTokenSet creates or replaces a token; accessor and secret IDs are
// unique across tokens. create refuses to replace.
func (s *Store) ACLTokenSet(idx uint64, tok *structs.ACLToken, create bool) error {
	if tok.AccessorID == "" || tok.SecretID == "" {
		return fmt.Errorf("%w: ACL token needs an accessor and a secret ID", structs.ErrInvalidRequest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.acl
	t.init()
	old := t.tokens[tok.AccessorID]
	if create && old != nil {
		return ErrACLDuplicateToken
	}
	if o := t.bySecret[tok.SecretID]; o != nil && o.AccessorID != tok.AccessorID {
		return ErrACLDuplicateToken
	}
	s.putToken(idx, tok)
	t.index = idx
	return nil
}

// ACLTokenDelete removes a token (absent: no-op). The anonymous token
// cannot be deleted.
func (s *Store) ACLTokenDelete(idx uint64, accessor string) error {
	if accessor == structs.ACLTokenAnonymousID {
		return ErrACLBuiltin
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.acl
	t.init()
	if old := t.tokens[accessor]; old != nil {
		delete(t.bySecret, old.SecretID)
		delete(t.tokens, accessor)
		t.index = idx
	}
	return nil
}

// ACLIndex returns the index of the last ACL change (at least 1).
func (s *Store) ACLIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(s.acl.index, 1)
}

// ACLBootstrapIndex returns the bootstrap's index (0: not bootstrapped).
func (s *Store) ACLBootstrapIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.acl.bootstrapIndex
}

// ACLPolicy returns a policy by ID, or by name when id is "" (nil if none).
// The result is shared: do not modify it.
func (s *Store) ACLPolicy(id, name string) *structs.ACLPolicy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id != "" {
		return s.acl.policies[id]
	}
	for _, p := range s.acl.policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ACLPolicies lists policies by name.
func (s *Store) ACLPolicies() []*structs.ACLPolicy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.ACLPolicy, 0, len(s.acl.policies))
	for _, p := range s.acl.policies {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ACLToken returns a token by accessor, or by secret when accessor is ""
// (nil if none), with its policy links' names filled in and links to
// deleted policies dropped. The result is a copy.
func (s *Store) ACLToken(accessor, secret string) *structs.ACLToken {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var tok *structs.ACLToken
	if accessor != "" {
		tok = s.acl.tokens[accessor]
	} else {
		tok = s.acl.bySecret[secret]
	}
	if tok == nil {
		return nil
	}
	return s.linkedToken(tok)
}

func (s *Store) linkedToken(tok *structs.ACLToken) *structs.ACLToken {
	c := *tok
	c.Policies = make([]structs.ACLPolicyLink, 0, len(tok.Policies))
	for _, l := range tok.Policies {
		if p := s.acl.policies[l.ID]; p != nil {
			c.Policies = append(c.Policies, structs.ACLPolicyLink{ID: p.ID, Name: p.Name})
		}
	}
	return &c
}

// ACLTokens lists tokens by accessor ID (copies, links resolved).
func (s *Store) ACLTokens() []*structs.ACLToken {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.ACLToken, 0, len(s.acl.tokens))
	for _, t := range s.acl.tokens {
		out = append(out, s.linkedToken(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AccessorID < out[j].AccessorID })
	return out
}

// aclSnapshot copies the ACL tables for a snapshot. Callers hold mu.
func (s *Store) aclSnapshot(snap *Snapshot) {
	for _, p := range s.acl.policies {
		snap.aclPolicies = append(snap.aclPolicies, p)
	}
	for _, t := range s.acl.tokens {
		snap.aclTokens = append(snap.aclTokens, t)
	}
	sort.Slice(snap.aclPolicies, func(i, j int) bool { return snap.aclPolicies[i].ID < snap.aclPolicies[j].ID })
	sort.Slice(snap.aclTokens, func(i, j int) bool { return snap.aclTokens[i].AccessorID < snap.aclTokens[j].AccessorID })
	snap.aclMeta = aclMeta{BootstrapIndex: s.acl.bootstrapIndex, Index: s.acl.index}
}

func (s *Store) restoreACLPolicy(p *structs.ACLPolicy) error {
	s.acl.init()
	if p.ID == "" || s.acl.policies[p.ID] != nil {
		return fmt.Errorf("bad or duplicate acl policy %q", p.ID)
	}
	s.acl.policies[p.ID] = p
	return nil
}

func (s *Store) restoreACLToken(t *structs.ACLToken) error {
	s.acl.init()
	if t.AccessorID == "" || s.acl.tokens[t.AccessorID] != nil || s.acl.bySecret[t.SecretID] != nil {
		return fmt.Errorf("bad or duplicate acl token %q", t.AccessorID)
	}
	s.acl.tokens[t.AccessorID] = t
	s.acl.bySecret[t.SecretID] = t
	return nil
}
