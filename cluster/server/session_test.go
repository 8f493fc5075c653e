package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

func sessionServer(t *testing.T) *Server {
	t.Helper()
	s := testServer(t, "s1", 1, "", nil, func(c *Config) { c.SessionTTLMin = 100 * time.Millisecond })
	testutil.Eventually(t, 30*time.Second, "s1 leads and is in the catalog with serfHealth", func() error {
		if !s.IsLeader() {
			return errors.New("not leader")
		}
		_, checks := s.State().NodeChecks("s1")
		for _, c := range checks {
			if c.CheckID == structs.SerfCheckID && c.Status == structs.HealthPassing {
				return nil
			}
		}
		return fmt.Errorf("checks %+v", checks)
	})
	return s
}

func createSession(ctx context.Context, t *testing.T, s *Server, sess structs.Session) error {
	t.Helper()
	var r structs.WriteResponse
	return s.RPC(ctx, structs.MethodSessionApply, &structs.SessionRequest{Op: structs.SessionCreate, Session: sess}, &r)
}

func kvLock(ctx context.Context, t *testing.T, s *Server, op structs.KVOp, key, session string) bool {
	t.Helper()
	var r structs.WriteResponse
	if err := s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: op, DirEnt: structs.DirEntry{Key: key, Session: session}}, &r); err != nil {
		t.Fatalf("%s %s by %s: %v", op, key, session, err)
	}
	return r.Success
}

func TestSessionTTLRenewLapseAndLockDelay(t *testing.T) {
	s := sessionServer(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		sess  structs.Session
		field string
	}{
		{"ttl below min", structs.Session{ID: "x", Node: "s1", TTL: "50ms"}, "TTL"},
		{"ttl above max", structs.Session{ID: "x", Node: "s1", TTL: "25h"}, "TTL"},
		{"bad ttl", structs.Session{ID: "x", Node: "s1", TTL: "soon"}, "TTL"},
		{"bad behavior", structs.Session{ID: "x", Node: "s1", Behavior: "keep"}, "Behavior"},
		{"lock delay too long", structs.Session{ID: "x", Node: "s1", LockDelay: time.Hour}, "LockDelay"},
		{"no id", structs.Session{Node: "s1"}, "ID"},
	} {
		var fe *structs.FieldError
		if err := createSession(ctx, t, s, tc.sess); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}

	const ttl = 300 * time.Millisecond
	const delay = 400 * time.Millisecond
	if err := createSession(ctx, t, s, structs.Session{ID: "ttl", Node: "s1", TTL: ttl.String(), LockDelay: delay,
		NodeChecks: []string{structs.SerfCheckID}}); err != nil {
		t.Fatal(err)
	}
	if err := createSession(ctx, t, s, structs.Session{ID: "other", Node: "s1"}); err != nil {
		t.Fatal(err)
	}
	if !kvLock(ctx, t, s, structs.KVLock, "leader", "ttl") {
		t.Fatal("acquire failed")
	}
	if kvLock(ctx, t, s, structs.KVLock, "leader", "other") {
		t.Fatal("second session acquired a held key")
	}
	// Renewing every TTL/2 for 3 TTLs keeps the session alive past 2×TTL.
	var lastRenew time.Time
	for i := 0; i < 6; i++ {
		lastRenew = time.Now()
		var r structs.IndexedSessions
		if err := s.RPC(ctx, structs.MethodSessionRenew, &structs.SessionSpecificRequest{SessionID: "ttl"}, &r); err != nil || len(r.Sessions) != 1 {
			t.Fatalf("renew %d: %v %+v", i, err, r.Sessions)
		}
		time.Sleep(ttl / 2) // the renew cadence under test, not synchronisation
	}
	if _, sess := s.State().SessionGet("ttl"); sess == nil {
		t.Fatal("renewed session lapsed")
	}
	testutil.Eventually(t, 10*time.Second, "the unrenewed session to lapse", func() error {
		if _, sess := s.State().SessionGet("ttl"); sess != nil {
			return errors.New("still there")
		}
		return nil
	})
	start := time.Now()
	if took := time.Since(lastRenew); took < structs.SessionTTLMultiplier*ttl-50*time.Millisecond {
		t.Fatalf("session lapsed after %v, before 2×TTL", took)
	}
	if _, e := s.State().KVSGet("leader"); e == nil || e.Session != "" {
		t.Fatalf("lapsed session's key not released: %+v", e)
	}
	// Lock-delay: the other session cannot take the key at once...
	if kvLock(ctx, t, s, structs.KVLock, "leader", "other") {
		if time.Since(start) < delay {
			t.Fatal("acquired a key inside its lock-delay")
		}
	}
	// ...but can once it ends.
	testutil.Eventually(t, 5*time.Second, "acquire after lock-delay", func() error {
		if !kvLock(ctx, t, s, structs.KVLock, "leader", "other") {
			return errors.New("not acquired")
		}
		return nil
	})
	var r structs.IndexedSessions
	if err := s.RPC(ctx, structs.MethodSessionRenew, &structs.SessionSpecificRequest{SessionID: "ttl"}, &r); err != nil || len(r.Sessions) != 0 {
		t.Fatalf("renew of a lapsed session: %v %+v", err, r.Sessions)
	}
	// Destroy disarms; reads see it gone.
	if err := s.RPC(ctx, structs.MethodSessionApply, &structs.SessionRequest{Op: structs.SessionDestroy, Session: structs.Session{ID: "other"}}, &structs.WriteResponse{}); err != nil {
		t.Fatal(err)
	}
	var list structs.IndexedSessions
	if err := s.RPC(ctx, structs.MethodSessionList, &structs.DCSpecificRequest{}, &list); err != nil || len(list.Sessions) != 0 || list.Index == 0 {
		t.Fatalf("list after destroy: %v %+v", err, list)
	}
	if n := s.sessionTTL.armed(); n != 0 {
		t.Fatalf("%d timers still armed", n)
	}
	if n := testutilCounter(t, s.sessionsLapsed); n != 1 {
		t.Fatalf("cairn_session_ttl_lapsed_total = %v, want 1", n)
	}
}

// TestSessionBlockingList: a blocking session list wakes on a create.
func TestSessionBlockingList(t *testing.T) {
	s := sessionServer(t)
	ctx := context.Background()
	var first structs.IndexedSessions
	if err := s.RPC(ctx, structs.MethodSessionNode, &structs.NodeSpecificRequest{Node: "s1"}, &first); err != nil {
		t.Fatal(err)
	}
	done := make(chan structs.IndexedSessions, 1)
	go func() {
		var r structs.IndexedSessions
		_ = s.RPC(ctx, structs.MethodSessionNode, &structs.NodeSpecificRequest{Node: "s1",
			QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 10 * time.Second}}, &r)
		done <- r
	}()
	if err := createSession(ctx, t, s, structs.Session{ID: "b1", Node: "s1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if len(r.Sessions) != 1 || r.Index <= first.Index {
			t.Fatalf("woken with %+v", r)
		}
	case <-time.After(9 * time.Second):
		t.Fatal("blocking read not woken by a create")
	}
}

// TestSessionTTLRearmedByNewLeader: a TTL session nobody renews lapses
// after the leader that armed it dies: the new leader arms its timer from
// its own clock, so the session goes no sooner than 2×TTL after that
// leader took over.
func TestSessionTTLRearmedByNewLeader(t *testing.T) {
	all := threeServers(t, func(c *Config) { c.SessionTTLMin = 100 * time.Millisecond })
	ctx := context.Background()
	old := leaderOf(all...)
	if _, err := register(ctx, old, "n1", 1); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	if err := createSession(ctx, t, old, structs.Session{ID: "ttl", Node: "n1", TTL: ttl.String()}); err != nil {
		t.Fatal(err)
	}
	if n := old.sessionTTL.armed(); n != 1 {
		t.Fatalf("%d timers armed on the leader, want 1", n)
	}
	for _, s := range all {
		if s != old && s.sessionTTL.armed() != 0 {
			t.Fatalf("follower %s armed a timer", s.cfg.NodeName)
		}
	}
	old.Close()
	var live []*Server
	for _, s := range all {
		if s != old {
			live = append(live, s)
		}
	}
	var nl *Server
	testutil.Eventually(t, 30*time.Second, "a new leader with the session's timer armed", func() error {
		if nl = leaderOf(live...); nl == nil || nl.sessionTTL.armed() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	armed := time.Now()
	testutil.Eventually(t, 4*ttl, "the session to lapse on the new leader", func() error {
		if _, sess := nl.State().SessionGet("ttl"); sess != nil {
			return errors.New("still there")
		}
		return nil
	})
	if took := time.Since(armed); took < 2*ttl-200*time.Millisecond {
		t.Fatalf("lapsed %v after the new leader armed it, before 2×TTL", took)
	}
}

func testutilCounter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSessionTTLTimers: timers arm only while leading, fire after
// 2×TTL, re-arm on reset, and stop forgets them all.
func TestSessionTTLTimers(t *testing.T) {
	tt := newSessionTTLs()
	tt.reset("early", time.Millisecond)
	if tt.armed() != 0 {
		t.Fatal("armed a timer while not leading")
	}
	tt.start([]*structs.Session{{ID: "a", TTL: "20ms"}, {ID: "none"}, {ID: "bad", TTL: "x"}})
	if n := tt.armed(); n != 1 {
		t.Fatalf("%d timers armed at start, want 1 (only TTL sessions)", n)
	}
	began := time.Now()
	select {
	case <-tt.kick:
	case <-time.After(5 * time.Second):
		t.Fatal("timer never fired")
	}
	if took := time.Since(began); took < 40*time.Millisecond {
		t.Fatalf("fired after %v, before 2×TTL", took)
	}
	if due := tt.takeDue(); len(due) != 1 || due[0] != "a" {
		t.Fatalf("due %v", due)
	}
	tt.reset("b", time.Hour)
	tt.reset("b", time.Hour) // re-arming replaces, not adds
	tt.reset("c", time.Hour)
	tt.clear("c")
	if n := tt.armed(); n != 1 {
		t.Fatalf("%d armed, want 1", n)
	}
	tt.stop()
	if n := tt.armed(); n != 0 {
		t.Fatalf("%d armed after stop", n)
	}
	tt.fire("b") // a timer that fired while stopping does nothing
	if due := tt.takeDue(); len(due) != 0 {
		t.Fatalf("due after stop: %v", due)
	}
}
