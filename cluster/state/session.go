package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

const maskSessions tableMask = 1 << TableSessions

// Session and lock errors. Their texts are Consul's where Consul has one,
// as clients log them.
var (
	// ErrSessionExists rejects a create whose ID is taken.
	ErrSessionExists = errors.New("session ID already exists")
	// ErrInvalidSession rejects a lock op naming no live session.
	ErrInvalidSession = errors.New("invalid session")
	// ErrMissingSession rejects a lock op without a session.
	ErrMissingSession = errors.New("missing session")
	// ErrSessionCheckCritical rejects a create on a critical check.
	ErrSessionCheckCritical = errors.New("session check is critical")
	// ErrSessionCheckMissing rejects a create naming an unknown check.
	ErrSessionCheckMissing = errors.New("missing check registration")
)

// SessionCreate stores sess (owned by the store from here on) at idx.
// Behavior defaults to release. It fails, changing nothing, when the ID
// is taken, the node is not registered, or a check the session names is
// missing from the node or critical (Consul's rules).
func (s *Store) SessionCreate(idx uint64, sess *structs.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sessionCreate(idx, sess); err != nil {
		return err
	}
	s.commit(maskSessions, idx)
	return nil
}

func (s *Store) sessionCreate(idx uint64, sess *structs.Session) error {
	if sess == nil || sess.ID == "" {
		return fmt.Errorf("state: session create: missing session ID")
	}
	if s.sessions[sess.ID] != nil {
		return fmt.Errorf("state: session create %s: %w", sess.ID, ErrSessionExists)
	}
	nr := s.nodes[sess.Node]
	if nr == nil {
		return fmt.Errorf("state: session create: Missing node registration %q: %w", sess.Node, structs.ErrUnknownNode)
	}
	for _, id := range sess.CheckIDs() {
		c := nr.checks[id]
		if c == nil {
			return fmt.Errorf("state: session create: Missing check '%s' registration: %w", id, ErrSessionCheckMissing)
		}
		if c.Status == structs.HealthCritical {
			return fmt.Errorf("state: session create: Check '%s' is in critical state: %w", id, ErrSessionCheckCritical)
		}
	}
	if sess.Behavior == "" {
		sess.Behavior = structs.SessionKeysRelease
	}
	sess.CreateIndex, sess.ModifyIndex = idx, idx
	s.sessions[sess.ID] = sess
	if s.nodeSessions[sess.Node] == nil {
		s.nodeSessions[sess.Node] = make(map[string]struct{})
	}
	s.nodeSessions[sess.Node][sess.ID] = struct{}{}
	return nil
}

// SessionDestroy invalidates session id at idx: it goes, and with it, in
// the same write, its locks (released or deleted by its Behavior, each
// lock-delayed). Destroying an absent session changes nothing.
func (s *Store) SessionDestroy(idx uint64, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commit(s.sessionDestroy(idx, id), idx)
	return nil
}

// sessionDestroy does SessionDestroy's work under mu and returns the
// tables it changed.
func (s *Store) sessionDestroy(idx uint64, id string) tableMask {
	sess := s.sessions[id]
	if sess == nil {
		return 0
	}
	delete(s.sessions, id)
	if ids := s.nodeSessions[sess.Node]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(s.nodeSessions, sess.Node)
		}
	}
	m := maskSessions
	keys := s.sessionLocks[id]
	if len(keys) == 0 {
		return m
	}
	// Sorted so every replica applies the same steps in the same order.
	held := make([]string, 0, len(keys))
	for k := range keys {
		held = append(held, k)
	}
	slices.Sort(held)
	now := s.now()
	s.pruneLockDelays(now)
	for _, k := range held {
		e := s.kvs[k]
		if e == nil || e.Session != id {
			continue
		}
		if sess.Behavior == structs.SessionKeysDelete {
			s.kvsDelete(idx, k)
		} else {
			ne := *e
			ne.Session, ne.ModifyIndex = "", idx
			s.kvs[k] = &ne
			s.pending.keys = append(s.pending.keys, k)
		}
		if sess.LockDelay > 0 {
			s.lockDelay[k] = now.Add(sess.LockDelay)
		}
	}
	delete(s.sessionLocks, id)
	return m | maskKVS
}

// pruneLockDelays drops lock-delays that have ended. Callers hold mu.
func (s *Store) pruneLockDelays(now time.Time) {
	for k, t := range s.lockDelay {
		if !t.After(now) {
			delete(s.lockDelay, k)
		}
	}
}

// invalidateNodeSessions destroys every session of node. Callers hold mu.
func (s *Store) invalidateNodeSessions(idx uint64, node string) tableMask {
	var m tableMask
	for _, id := range s.sessionsOfNode(node) {
		m |= s.sessionDestroy(idx, id)
	}
	return m
}

// invalidateCheckSessions destroys every session of node that depends on
// check checkID, which went critical or away. Callers hold mu.
func (s *Store) invalidateCheckSessions(idx uint64, node, checkID string) tableMask {
	var m tableMask
	for _, id := range s.sessionsOfNode(node) {
		if slices.Contains(s.sessions[id].CheckIDs(), checkID) {
			m |= s.sessionDestroy(idx, id)
		}
	}
	return m
}

// sessionsOfNode returns node's session IDs, sorted. Callers hold mu.
func (s *Store) sessionsOfNode(node string) []string {
	ids := s.nodeSessions[node]
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// SessionGet returns session id (nil if absent) with the sessions table's
// index.
func (s *Store) SessionGet(id string) (uint64, *structs.Session) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessionsIndex(), s.sessions[id]
}

// SessionList returns every session, ordered by ID.
func (s *Store) SessionList() (uint64, []*structs.Session) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b *structs.Session) int { return strings.Compare(a.ID, b.ID) })
	return s.sessionsIndex(), out
}

// NodeSessions returns node's sessions, ordered by ID.
func (s *Store) NodeSessions(node string) (uint64, []*structs.Session) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.sessionsOfNode(node)
	out := make([]*structs.Session, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.sessions[id])
	}
	return s.sessionsIndex(), out
}

// sessionsIndex is what session reads report. Callers hold mu.
func (s *Store) sessionsIndex() uint64 {
	return max(s.tableIndex[TableSessions], s.floor, 1)
}

// KVSLockDelay returns when key's lock-delay ends (zero if none): after a
// session holding key is invalidated, key cannot be acquired before then.
// Lock-delays live in memory only, from each server's own clock at apply
// time, as Consul's: the leader checks them before proposing a lock.
func (s *Store) KVSLockDelay(key string) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lockDelay[key]
}

// KVSLock acquires key for e.Session at idx, storing e's value and flags
// (Consul's ?acquire). It reports false, changing nothing, when another
// session holds key; the holder re-acquiring updates the value and keeps
// LockIndex; a fresh acquire bumps LockIndex. A missing or unknown session
// is an error. Lock-delay is not checked here (see KVSLockDelay).
func (s *Store) KVSLock(idx uint64, e *structs.DirEntry) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.kvsLock(idx, e)
	if ok {
		s.commit(maskKVS, idx)
	}
	return ok, err
}

// kvsLock is KVSLock under mu, without commit.
func (s *Store) kvsLock(idx uint64, e *structs.DirEntry) (bool, error) {
	if e == nil || e.Key == "" {
		return false, ErrMissingKey
	}
	if e.Session == "" {
		return false, ErrMissingSession
	}
	if s.sessions[e.Session] == nil {
		return false, fmt.Errorf("%w %q", ErrInvalidSession, e.Session)
	}
	ne := &structs.DirEntry{Key: e.Key, Value: e.Value, Flags: e.Flags, Session: e.Session,
		CreateIndex: idx, ModifyIndex: idx, LockIndex: 1}
	if old := s.kvs[e.Key]; old != nil {
		switch old.Session {
		case e.Session:
			ne.LockIndex = old.LockIndex
		case "":
			ne.LockIndex = old.LockIndex + 1
		default:
			return false, nil
		}
		ne.CreateIndex = old.CreateIndex
	} else {
		s.kvKeys.insert(e.Key)
		s.recordKVAdd(e.Key)
	}
	s.kvs[e.Key] = ne
	s.indexLock(e.Session, e.Key)
	s.pending.keys = append(s.pending.keys, e.Key)
	return true, nil
}

// KVSUnlock releases key held by e.Session at idx, storing e's value and
// flags (Consul's ?release). It reports false, changing nothing, when the
// key is absent or not held by that session.
func (s *Store) KVSUnlock(idx uint64, e *structs.DirEntry) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.kvsUnlock(idx, e)
	if ok {
		s.commit(maskKVS, idx)
	}
	return ok, err
}

// kvsUnlock is KVSUnlock under mu, without commit.
func (s *Store) kvsUnlock(idx uint64, e *structs.DirEntry) (bool, error) {
	if e == nil || e.Key == "" {
		return false, ErrMissingKey
	}
	if e.Session == "" {
		return false, ErrMissingSession
	}
	old := s.kvs[e.Key]
	if old == nil || old.Session != e.Session {
		return false, nil
	}
	s.kvs[e.Key] = &structs.DirEntry{Key: e.Key, Value: e.Value, Flags: e.Flags,
		LockIndex: old.LockIndex, CreateIndex: old.CreateIndex, ModifyIndex: idx}
	s.unindexLock(e.Session, e.Key)
	s.pending.keys = append(s.pending.keys, e.Key)
	return true, nil
}

// indexLock records that session holds key. Callers hold mu.
func (s *Store) indexLock(session, key string) {
	keys := s.sessionLocks[session]
	if keys == nil {
		keys = make(map[string]struct{})
		s.sessionLocks[session] = keys
	}
	keys[key] = struct{}{}
}

// unindexLock forgets that session holds key. Callers hold mu.
func (s *Store) unindexLock(session, key string) {
	if keys := s.sessionLocks[session]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(s.sessionLocks, session)
		}
	}
}

func (s *Store) restoreSession(sess *structs.Session) error {
	if sess.ID == "" || s.sessions[sess.ID] != nil {
		return fmt.Errorf("bad or duplicate session %q", sess.ID)
	}
	// A session outlives no node (deregistering a node destroys its
	// sessions in the same write), but a restore does not depend on it.
	s.sessions[sess.ID] = sess
	if s.nodeSessions[sess.Node] == nil {
		s.nodeSessions[sess.Node] = make(map[string]struct{})
	}
	s.nodeSessions[sess.Node][sess.ID] = struct{}{}
	return nil
}
