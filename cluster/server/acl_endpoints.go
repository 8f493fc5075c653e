package server

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

// validPolicyName is Consul's policy name rule.
var validPolicyName = regexp.MustCompile(`^[A-Za-z0-9\-_]{1,128}$`)

// maxACLDescription bounds descriptions: generous for prose, small next
// to Raft's entry size.
const maxACLDescription = 4096

func (s *Server) registerACLEndpoints() {
	handle(s, structs.MethodACLBootstrap, func(ctx context.Context, a *structs.ACLBootstrapRequest, r *structs.ACLToken) error {
		if !s.cfg.ACL.Enabled {
			return structs.ErrACLDisabled
		}
		if done, err := s.forward(ctx, structs.MethodACLBootstrap, a.Datacenter, nil, a, r); done {
			return err
		}
		if idx := s.fsm.State().ACLBootstrapIndex(); idx != 0 {
			return fmt.Errorf("%w (reset index: %d)", structs.ErrACLBootstrapDone, idx)
		}
		var err error
		tok := structs.ACLToken{Description: "Bootstrap Token (Global Management)", CreateTime: time.Now().UTC()}
		if tok.AccessorID, err = structs.GenerateUUID(); err != nil {
			return err
		}
		if tok.SecretID, err = structs.GenerateUUID(); err != nil {
			return err
		}
		if _, _, err := s.apply(structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: tok}); err != nil {
			return err
		}
		*r = *s.fsm.State().ACLToken(tok.AccessorID, "")
		return nil
	})
	handle(s, structs.MethodACLPolicySet, func(ctx context.Context, a *structs.ACLPolicySetRequest, r *structs.ACLPolicy) error {
		if done, err := s.forward(ctx, structs.MethodACLPolicySet, a.Datacenter, nil, a, r); done {
			return err
		}
		p := a.Policy
		if !validPolicyName.MatchString(p.Name) {
			return fmt.Errorf("%w: Invalid Policy: invalid Name %q (letters, digits, - and _, at most 128)", structs.ErrInvalidRequest, p.Name)
		}
		if len(p.Description) > maxACLDescription {
			return fmt.Errorf("%w: Invalid Policy: Description longer than %d bytes", structs.ErrInvalidRequest, maxACLDescription)
		}
		if _, err := acl.Parse(p.Rules); err != nil {
			return fmt.Errorf("%w: Invalid Policy: %v", structs.ErrInvalidRequest, err)
		}
		st := s.fsm.State()
		if p.ID == "" {
			var err error
			if p.ID, err = structs.GenerateUUID(); err != nil {
				return err
			}
		} else if st.ACLPolicy(p.ID, "") == nil {
			return fmt.Errorf("%w: Invalid Policy: no policy with ID %q", structs.ErrInvalidRequest, p.ID)
		}
		if p.ID == structs.ACLPolicyGlobalManagementID {
			return fmt.Errorf("%w: Changing the builtin global-management policy is not permitted", structs.ErrInvalidRequest)
		}
		if o := st.ACLPolicy("", p.Name); o != nil && o.ID != p.ID {
			return fmt.Errorf("%w: Invalid Policy: A Policy with Name %q already exists", structs.ErrInvalidRequest, p.Name)
		}
		if _, _, err := s.apply(structs.ACLPolicySetRequestType, &structs.ACLPolicySetRequest{Policy: p}); err != nil {
			return err
		}
		*r = *s.fsm.State().ACLPolicy(p.ID, "")
		return nil
	})
	handle(s, structs.MethodACLPolicyDelete, func(ctx context.Context, a *structs.ACLPolicyDeleteRequest, r *structs.WriteResponse) error {
		if a.ID == structs.ACLPolicyGlobalManagementID {
			return fmt.Errorf("%w: Delete of the builtin global-management policy is not permitted", structs.ErrInvalidRequest)
		}
		return s.write(ctx, structs.MethodACLPolicyDelete, a.Datacenter, structs.ACLPolicyDeleteRequestType, a, r)
	})
	handle(s, structs.MethodACLPolicyRead, func(ctx context.Context, a *structs.ACLPolicyReadRequest, r *structs.ACLPolicy) error {
		if done, err := s.forward(ctx, structs.MethodACLPolicyRead, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		*r = structs.ACLPolicy{}
		if p := s.fsm.State().ACLPolicy(a.ID, a.Name); p != nil {
			*r = *p
		}
		return nil
	})
	handle(s, structs.MethodACLPolicyList, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.IndexedACLPolicies) error {
		if done, err := s.forward(ctx, structs.MethodACLPolicyList, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		st := s.fsm.State()
		r.Policies, r.Index = st.ACLPolicies(), st.ACLIndex()
		return nil
	})
	handle(s, structs.MethodACLTokenSet, func(ctx context.Context, a *structs.ACLTokenSetRequest, r *structs.ACLToken) error {
		if done, err := s.forward(ctx, structs.MethodACLTokenSet, a.Datacenter, nil, a, r); done {
			return err
		}
		tok, err := s.prepareToken(a)
		if err != nil {
			return err
		}
		if _, _, err := s.apply(structs.ACLTokenSetRequestType, &structs.ACLTokenSetRequest{Token: *tok, Create: a.Create}); err != nil {
			return err
		}
		*r = *s.fsm.State().ACLToken(tok.AccessorID, "")
		return nil
	})
	handle(s, structs.MethodACLTokenDelete, func(ctx context.Context, a *structs.ACLTokenDeleteRequest, r *structs.WriteResponse) error {
		if a.AccessorID == structs.ACLTokenAnonymousID {
			return fmt.Errorf("%w: Delete operation not permitted on the anonymous token", structs.ErrInvalidRequest)
		}
		return s.write(ctx, structs.MethodACLTokenDelete, a.Datacenter, structs.ACLTokenDeleteRequestType, a, r)
	})
	handle(s, structs.MethodACLTokenRead, func(ctx context.Context, a *structs.ACLTokenReadRequest, r *structs.ACLToken) error {
		if done, err := s.forward(ctx, structs.MethodACLTokenRead, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		st := s.fsm.State()
		var tok *structs.ACLToken
		if a.Self {
			secret := acl.TokenFromContext(ctx)
			if secret == "" {
				secret = structs.ACLTokenAnonymousSecret
			}
			if tok = st.ACLToken("", secret); tok == nil {
				return structs.ErrACLNotFound
			}
			*r = *tok
			return nil
		}
		*r = structs.ACLToken{}
		if tok = st.ACLToken(a.AccessorID, ""); tok != nil {
			*r = *s.maybeRedact(ctx, tok)
		}
		return nil
	})
	handle(s, structs.MethodACLTokenList, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.IndexedACLTokens) error {
		if done, err := s.forward(ctx, structs.MethodACLTokenList, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		st := s.fsm.State()
		r.Tokens, r.Index = st.ACLTokens(), st.ACLIndex()
		for i, t := range r.Tokens {
			r.Tokens[i] = s.maybeRedact(ctx, t)
		}
		return nil
	})
	handle(s, structs.MethodACLResolve, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.ACLResolution) error {
		if !s.cfg.ACL.Enabled {
			*r = structs.ACLResolution{Found: true, Management: true}
			return nil
		}
		*r = *s.resolve(s.fsm.State(), acl.TokenFromContext(ctx))
		return nil
	})
}

// maybeRedact hides a token's secret from callers without acl:write.
func (s *Server) maybeRedact(ctx context.Context, t *structs.ACLToken) *structs.ACLToken {
	if a, err := s.Authorizer(ctx); err == nil && a.Write(acl.ResACL, "") {
		return t
	}
	return t.Redacted()
}

// prepareToken fills in a token write on the leader: new IDs for a
// create, the stored secret for an update that omits it, and policy
// links resolved to IDs (by ID or by name).
func (s *Server) prepareToken(a *structs.ACLTokenSetRequest) (*structs.ACLToken, error) {
	st := s.fsm.State()
	tok := a.Token
	if len(tok.Description) > maxACLDescription {
		return nil, fmt.Errorf("%w: Invalid Token: Description longer than %d bytes", structs.ErrInvalidRequest, maxACLDescription)
	}
	var err error
	if a.Create {
		if tok.AccessorID == "" {
			if tok.AccessorID, err = structs.GenerateUUID(); err != nil {
				return nil, err
			}
		} else if st.ACLToken(tok.AccessorID, "") != nil {
			return nil, fmt.Errorf("%w: Invalid Token: AccessorID is already in use", structs.ErrInvalidRequest)
		}
		if tok.SecretID == "" {
			if tok.SecretID, err = structs.GenerateUUID(); err != nil {
				return nil, err
			}
		}
		tok.CreateTime = time.Now().UTC()
	} else {
		old := st.ACLToken(tok.AccessorID, "")
		if old == nil {
			return nil, fmt.Errorf("%w: Invalid Token: no token with AccessorID %q", structs.ErrInvalidRequest, tok.AccessorID)
		}
		if tok.SecretID == "" {
			tok.SecretID = old.SecretID
		} else if tok.SecretID != old.SecretID {
			return nil, fmt.Errorf("%w: Invalid Token: SecretID cannot be changed", structs.ErrInvalidRequest)
		}
		tok.CreateTime = old.CreateTime
	}
	if o := st.ACLToken("", tok.SecretID); o != nil && o.AccessorID != tok.AccessorID {
		return nil, fmt.Errorf("%w: Invalid Token: SecretID is already in use", structs.ErrInvalidRequest)
	}
	links := make([]structs.ACLPolicyLink, 0, len(tok.Policies))
	for _, l := range tok.Policies {
		p := st.ACLPolicy(l.ID, l.Name)
		if p == nil {
			return nil, fmt.Errorf("%w: Invalid Token: cannot find policy %q", structs.ErrInvalidRequest, l.ID+l.Name)
		}
		links = append(links, structs.ACLPolicyLink{ID: p.ID})
	}
	tok.Policies = links
	return &tok, nil
}
