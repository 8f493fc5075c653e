package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// TestACLApplyAndSnapshot applies every ACL command, checks the Store's
// answers, then round-trips a snapshot and checks the ACL tables survive.
func TestACLApplyAndSnapshot(t *testing.T) {
	f := New(nil)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mgmt := structs.ACLToken{AccessorID: "acc-1", SecretID: "sec-1", CreateTime: now}
	steps := []struct {
		name string
		mt   structs.MessageType
		msg  any
		want error
	}{
		{"bootstrap", structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: mgmt}, nil},
		{"second bootstrap", structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: structs.ACLToken{AccessorID: "acc-2", SecretID: "sec-2"}}, structs.ErrACLBootstrapDone},
		{"policy", structs.ACLPolicySetRequestType, &structs.ACLPolicySetRequest{Policy: structs.ACLPolicy{ID: "p1", Name: "app", Rules: `key_prefix "app/" { policy = "write" }`}}, nil},
		{"policy same name", structs.ACLPolicySetRequestType, &structs.ACLPolicySetRequest{Policy: structs.ACLPolicy{ID: "p2", Name: "app"}}, state.ErrACLDuplicateName},
		{"token", structs.ACLTokenSetRequestType, &structs.ACLTokenSetRequest{Token: structs.ACLToken{AccessorID: "acc-3", SecretID: "sec-3", Policies: []structs.ACLPolicyLink{{ID: "p1"}}}, Create: true}, nil},
		{"token same secret", structs.ACLTokenSetRequestType, &structs.ACLTokenSetRequest{Token: structs.ACLToken{AccessorID: "acc-4", SecretID: "sec-3"}, Create: true}, state.ErrACLDuplicateToken},
		{"delete anonymous", structs.ACLTokenDeleteRequestType, &structs.ACLTokenDeleteRequest{AccessorID: structs.ACLTokenAnonymousID}, state.ErrACLBuiltin},
		{"delete management policy", structs.ACLPolicyDeleteRequestType, &structs.ACLPolicyDeleteRequest{ID: structs.ACLPolicyGlobalManagementID}, state.ErrACLBuiltin},
		{"token 5", structs.ACLTokenSetRequestType, &structs.ACLTokenSetRequest{Token: structs.ACLToken{AccessorID: "acc-5", SecretID: "sec-5"}}, nil},
		{"delete token 5", structs.ACLTokenDeleteRequestType, &structs.ACLTokenDeleteRequest{AccessorID: "acc-5"}, nil},
	}
	for i, st := range steps {
		got := f.Apply(cmd(uint64(i+1), encode(t, st.mt, st.msg)))
		err, _ := got.(error)
		if (st.want == nil) != (err == nil) || (st.want != nil && !errors.Is(err, st.want)) {
			t.Fatalf("%s: Apply = %v, want %v", st.name, got, st.want)
		}
	}
	check := func(s *state.Store) {
		t.Helper()
		if s.ACLBootstrapIndex() != 1 {
			t.Errorf("bootstrap index %d, want 1", s.ACLBootstrapIndex())
		}
		tok := s.ACLToken("", "sec-3")
		if tok == nil || len(tok.Policies) != 1 || tok.Policies[0].Name != "app" {
			t.Errorf("token by secret: %+v", tok)
		}
		m := s.ACLToken("acc-1", "")
		if m == nil || !m.CreateTime.Equal(now) || m.Policies[0].ID != structs.ACLPolicyGlobalManagementID {
			t.Errorf("management token: %+v", m)
		}
		if s.ACLToken(structs.ACLTokenAnonymousID, "") == nil || s.ACLToken("acc-5", "") != nil {
			t.Error("anonymous token missing or deleted token present")
		}
		if n := len(s.ACLPolicies()); n != 2 {
			t.Errorf("%d policies, want 2", n)
		}
		if n := len(s.ACLTokens()); n != 3 {
			t.Errorf("%d tokens, want 3", n)
		}
		if s.ACLIndex() != 10 {
			t.Errorf("acl index %d, want 10", s.ACLIndex())
		}
	}
	check(f.State())
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*snapshot).snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	f2 := New(nil)
	if err := f2.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	check(f2.State())
	// Restored, the second bootstrap is still refused.
	if err, _ := f2.Apply(cmd(11, encode(t, structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: structs.ACLToken{AccessorID: "x", SecretID: "y"}}))).(error); !errors.Is(err, structs.ErrACLBootstrapDone) {
		t.Errorf("bootstrap after restore: %v", err)
	}
}
