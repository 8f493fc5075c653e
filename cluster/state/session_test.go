package state

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// sessionStore returns a store with node "a" (serfHealth passing, service
// web with check web-http passing) and a fake clock the test moves.
func sessionStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	s := New()
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	mustRegister(t, s, 1, webReq("a", "10.0.0.1", 80, structs.HealthPassing))
	return s, &now
}

func mustCreate(t *testing.T, s *Store, idx uint64, sess *structs.Session) {
	t.Helper()
	if err := s.SessionCreate(idx, sess); err != nil {
		t.Fatalf("create %s at %d: %v", sess.ID, idx, err)
	}
}

func lock(t *testing.T, s *Store, idx uint64, key, session, value string) bool {
	t.Helper()
	ok, err := s.KVSLock(idx, &structs.DirEntry{Key: key, Session: session, Value: []byte(value)})
	if err != nil {
		t.Fatalf("lock %s by %s at %d: %v", key, session, idx, err)
	}
	return ok
}

func TestSessionCreateRules(t *testing.T) {
	s, _ := sessionStore(t)
	mustRegister(t, s, 2, &structs.RegisterRequest{Node: "b", Address: "10.0.0.2",
		Check: &structs.HealthCheck{CheckID: "serfHealth", Status: structs.HealthCritical}})
	for _, tc := range []struct {
		name string
		sess structs.Session
		want error
	}{
		{"unknown node", structs.Session{ID: "s1", Node: "nope"}, structs.ErrUnknownNode},
		{"missing check", structs.Session{ID: "s1", Node: "a", NodeChecks: []string{"nope"}}, ErrSessionCheckMissing},
		{"missing service check", structs.Session{ID: "s1", Node: "a", ServiceChecks: []structs.ServiceCheck{{ID: "nope"}}}, ErrSessionCheckMissing},
		{"critical check", structs.Session{ID: "s1", Node: "b", NodeChecks: []string{"serfHealth"}}, ErrSessionCheckCritical},
	} {
		sess := tc.sess
		if err := s.SessionCreate(10, &sess); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if s.TableIndex(TableSessions) != 0 {
		t.Fatal("a rejected create moved the sessions index")
	}
	mustCreate(t, s, 11, &structs.Session{ID: "s1", Node: "a", NodeChecks: []string{"serfHealth"},
		ServiceChecks: []structs.ServiceCheck{{ID: "web-http"}}})
	if err := s.SessionCreate(12, &structs.Session{ID: "s1", Node: "a"}); !errors.Is(err, ErrSessionExists) {
		t.Fatalf("duplicate ID: %v", err)
	}
	idx, got := s.SessionGet("s1")
	if idx != 11 || got == nil || got.Behavior != structs.SessionKeysRelease || got.CreateIndex != 11 || got.ModifyIndex != 11 {
		t.Fatalf("SessionGet = %d %+v", idx, got)
	}
	mustCreate(t, s, 13, &structs.Session{ID: "s0", Node: "b"}) // no checks: a critical node is fine
	if _, all := s.SessionList(); len(all) != 2 || all[0].ID != "s0" || all[1].ID != "s1" {
		t.Fatalf("SessionList = %+v", all)
	}
	if _, mine := s.NodeSessions("a"); len(mine) != 1 || mine[0].ID != "s1" {
		t.Fatalf("NodeSessions(a) = %+v", mine)
	}
}

func TestKVSLockUnlock(t *testing.T) {
	s, _ := sessionStore(t)
	mustCreate(t, s, 2, &structs.Session{ID: "s1", Node: "a"})
	mustCreate(t, s, 3, &structs.Session{ID: "s2", Node: "a"})

	if _, err := s.KVSLock(4, &structs.DirEntry{Key: "k"}); !errors.Is(err, ErrMissingSession) {
		t.Fatalf("lock without session: %v", err)
	}
	if _, err := s.KVSLock(4, &structs.DirEntry{Key: "k", Session: "zz"}); !errors.Is(err, ErrInvalidSession) {
		t.Fatalf("lock with unknown session: %v", err)
	}
	if !lock(t, s, 5, "k", "s1", "v1") {
		t.Fatal("first acquire failed")
	}
	_, e := s.KVSGet("k")
	if e.Session != "s1" || e.LockIndex != 1 || e.CreateIndex != 5 || string(e.Value) != "v1" {
		t.Fatalf("after acquire: %+v", e)
	}
	if lock(t, s, 6, "k", "s2", "x") {
		t.Fatal("acquire of a held key succeeded")
	}
	if !lock(t, s, 7, "k", "s1", "v2") {
		t.Fatal("holder re-acquire failed")
	}
	if _, e = s.KVSGet("k"); e.LockIndex != 1 || e.ModifyIndex != 7 || string(e.Value) != "v2" {
		t.Fatalf("after re-acquire: %+v", e)
	}
	// A plain set keeps the lock.
	if err := s.KVSSet(8, &structs.DirEntry{Key: "k", Value: []byte("v3")}); err != nil {
		t.Fatal(err)
	}
	if _, e = s.KVSGet("k"); e.Session != "s1" {
		t.Fatalf("set dropped the lock: %+v", e)
	}
	if ok, err := s.KVSUnlock(9, &structs.DirEntry{Key: "k", Session: "s2"}); ok || err != nil {
		t.Fatalf("release by non-holder: %v %v", ok, err)
	}
	if ok, err := s.KVSUnlock(9, &structs.DirEntry{Key: "absent", Session: "s1"}); ok || err != nil {
		t.Fatalf("release of absent key: %v %v", ok, err)
	}
	if ok, err := s.KVSUnlock(10, &structs.DirEntry{Key: "k", Session: "s1", Value: []byte("r")}); !ok || err != nil {
		t.Fatalf("release by holder: %v %v", ok, err)
	}
	if _, e = s.KVSGet("k"); e.Session != "" || e.LockIndex != 1 || e.ModifyIndex != 10 || string(e.Value) != "r" {
		t.Fatalf("after release: %+v", e)
	}
	if !lock(t, s, 11, "k", "s2", "") {
		t.Fatal("acquire after release failed")
	}
	if _, e = s.KVSGet("k"); e.LockIndex != 2 || e.Session != "s2" {
		t.Fatalf("second holder: %+v", e)
	}
	// Released locks leave the session's held set: destroying s1 now
	// touches nothing of k.
	if err := s.SessionDestroy(12, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, e = s.KVSGet("k"); e.Session != "s2" || e.ModifyIndex != 11 {
		t.Fatalf("destroying a former holder changed the key: %+v", e)
	}
	if s.KVSLockDelay("k") != (time.Time{}) {
		t.Fatal("lock-delay set by a session that did not hold the key")
	}
	// A deleted key leaves its session's held set too.
	if err := s.KVSDelete(13, "k"); err != nil {
		t.Fatal(err)
	}
	if len(s.sessionLocks) != 0 {
		t.Fatalf("held-lock index after delete: %v", s.sessionLocks)
	}
}

func TestSessionInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sess       structs.Session
		invalidate func(t *testing.T, s *Store, idx uint64)
	}{
		{"destroy", structs.Session{}, func(t *testing.T, s *Store, idx uint64) {
			if err := s.SessionDestroy(idx, "s1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"node deregistered", structs.Session{}, func(t *testing.T, s *Store, idx uint64) {
			if err := s.Deregister(idx, &structs.DeregisterRequest{Node: "a"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"serfHealth critical", structs.Session{NodeChecks: []string{"serfHealth"}}, func(t *testing.T, s *Store, idx uint64) {
			mustRegister(t, s, idx, &structs.RegisterRequest{Node: "a", SkipNodeUpdate: true,
				Check: &structs.HealthCheck{CheckID: "serfHealth", Status: structs.HealthCritical}})
		}},
		{"service check critical", structs.Session{ServiceChecks: []structs.ServiceCheck{{ID: "web-http"}}}, func(t *testing.T, s *Store, idx uint64) {
			mustRegister(t, s, idx, webReq("a", "10.0.0.1", 80, structs.HealthCritical))
		}},
		{"check deregistered", structs.Session{NodeChecks: []string{"serfHealth"}}, func(t *testing.T, s *Store, idx uint64) {
			if err := s.Deregister(idx, &structs.DeregisterRequest{Node: "a", CheckID: "serfHealth"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"service deregistered", structs.Session{ServiceChecks: []structs.ServiceCheck{{ID: "web-http"}}}, func(t *testing.T, s *Store, idx uint64) {
			if err := s.Deregister(idx, &structs.DeregisterRequest{Node: "a", ServiceID: "web"}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		for _, behavior := range []string{structs.SessionKeysRelease, structs.SessionKeysDelete} {
			t.Run(tc.name+"/"+behavior, func(t *testing.T) {
				s, now := sessionStore(t)
				sess := tc.sess
				sess.ID, sess.Node, sess.Behavior, sess.LockDelay = "s1", "a", behavior, 10*time.Second
				mustCreate(t, s, 2, &sess)
				mustCreate(t, s, 3, &structs.Session{ID: "other", Node: "a"}) // no checks
				lock(t, s, 4, "lock/x", "s1", "held")
				lock(t, s, 5, "lock/y", "s1", "held")
				lock(t, s, 6, "lock/z", "other", "")
				kvWatch := s.WatchKey(KVPrefixKey("lock/x"))
				sessWatch := s.Watch(TableSessions)

				tc.invalidate(t, s, 7)

				if _, got := s.SessionGet("s1"); got != nil {
					t.Fatalf("session survived: %+v", got)
				}
				for _, k := range []string{"lock/x", "lock/y"} {
					_, e := s.KVSGet(k)
					switch {
					case behavior == structs.SessionKeysDelete && e != nil:
						t.Fatalf("%s not deleted: %+v", k, e)
					case behavior == structs.SessionKeysRelease && (e == nil || e.Session != "" || e.ModifyIndex != 7 || e.LockIndex != 1 || string(e.Value) != "held"):
						t.Fatalf("%s not released at 7: %+v", k, e)
					}
					if want := now.Add(10 * time.Second); !s.KVSLockDelay(k).Equal(want) {
						t.Fatalf("%s lock-delay %v, want %v", k, s.KVSLockDelay(k), want)
					}
				}
				if s.TableIndex(TableSessions) != 7 || s.TableIndex(TableKVS) != 7 {
					t.Fatalf("indexes sessions=%d kvs=%d, want 7", s.TableIndex(TableSessions), s.TableIndex(TableKVS))
				}
				for name, ch := range map[string]<-chan struct{}{"kv": kvWatch, "sessions": sessWatch} {
					select {
					case <-ch:
					default:
						t.Fatalf("%s watchers not woken", name)
					}
				}
				if tc.name != "node deregistered" {
					if _, e := s.KVSGet("lock/z"); e == nil || e.Session != "other" {
						t.Fatalf("another session's lock changed: %+v", e)
					}
				}
				// The lock-delay ends on the clock, and the store forgets it
				// at the next invalidation.
				*now = now.Add(11 * time.Second)
				mustRegister(t, s, 8, webReq("a", "10.0.0.1", 80, structs.HealthPassing))
				mustCreate(t, s, 8, &structs.Session{ID: "s3", Node: "a"})
				lock(t, s, 9, "lock/q", "s3", "")
				if err := s.SessionDestroy(10, "s3"); err != nil {
					t.Fatal(err)
				}
				if _, ok := s.lockDelay["lock/x"]; ok {
					t.Fatal("ended lock-delay not pruned")
				}
			})
		}
	}
}

func TestSessionDestroyAbsentChangesNothing(t *testing.T) {
	s, _ := sessionStore(t)
	ch := s.Watch(TableSessions)
	if err := s.SessionDestroy(5, "nope"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("no-op destroy woke watchers")
	default:
	}
	if s.TableIndex(TableSessions) != 0 {
		t.Fatal("no-op destroy moved the index")
	}
}

func TestSessionSnapshotRoundTrip(t *testing.T) {
	s, _ := sessionStore(t)
	mustCreate(t, s, 2, &structs.Session{ID: "s1", Node: "a", Name: "n", TTL: "15s", LockDelay: time.Second,
		Behavior: structs.SessionKeysDelete, NodeChecks: []string{"serfHealth"}, ServiceChecks: []structs.ServiceCheck{{ID: "web-http"}}})
	mustCreate(t, s, 3, &structs.Session{ID: "s0", Node: "a"})
	lock(t, s, 4, "k", "s1", "v")

	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	_, got := r.SessionGet("s1")
	if got == nil || got.TTL != "15s" || got.LockDelay != time.Second || got.Behavior != structs.SessionKeysDelete ||
		len(got.ServiceChecks) != 1 || got.ServiceChecks[0].ID != "web-http" || got.CreateIndex != 2 {
		t.Fatalf("restored session %+v", got)
	}
	if r.TableIndex(TableSessions) != 3 {
		t.Fatalf("restored sessions index %d", r.TableIndex(TableSessions))
	}
	// The restored store knows who holds what: invalidation deletes k.
	mustRegister(t, r, 5, webReq("a", "10.0.0.1", 80, structs.HealthCritical))
	if _, e := r.KVSGet("k"); e != nil {
		t.Fatalf("restored lock not released on invalidation: %+v", e)
	}
	if _, s0 := r.SessionGet("s0"); s0 == nil {
		t.Fatal("session without checks invalidated by a check")
	}
}

// TestRestoreSnapshotWithoutSessionsTable: a snapshot written before the
// sessions table existed (four table indexes, no session records)
// restores, with sessions empty at index 0.
func TestRestoreSnapshotWithoutSessionsTable(t *testing.T) {
	s, _ := sessionStore(t)
	snap := s.Snapshot()
	var buf bytes.Buffer
	if err := snap.persist(&buf, snap.index[:TableSessions]); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.TableIndex(TableSessions) != 0 || r.TableIndex(TableNodes) != 1 {
		t.Fatalf("indexes sessions=%d nodes=%d", r.TableIndex(TableSessions), r.TableIndex(TableNodes))
	}
	if _, all := r.SessionList(); len(all) != 0 {
		t.Fatalf("sessions %+v", all)
	}
}
