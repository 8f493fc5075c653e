package structs

import (
	"fmt"
	"strconv"
	"time"
)

// SessionRequestType carries a SessionRequest (msgpack): session create
// and destroy, and the KV lock and unlock ops. Lock and unlock live here,
// not under KVSRequestType, because servers that predate them would reject
// those ops while newer ones apply them (see cluster/fsm's version rule);
// an old server stops on type 3 instead of diverging.
const SessionRequestType MessageType = 3

// Session behaviours on invalidation (Consul's).
const (
	SessionKeysRelease = "release"
	SessionKeysDelete  = "delete"
)

// Session limits and defaults, Consul's.
const (
	// DefaultLockDelay is a session's lock-delay when the request sets none.
	DefaultLockDelay = 15 * time.Second
	// MaxLockDelay is the longest lock-delay Consul accepts.
	MaxLockDelay = 60 * time.Second
	// SessionTTLMin is the default shortest TTL (Consul's session_ttl_min).
	SessionTTLMin = 10 * time.Second
	// SessionTTLMax is the longest TTL, 24 hours.
	SessionTTLMax = 24 * time.Hour
	// SessionTTLMultiplier: the leader invalidates a TTL session only after
	// this many TTLs without a renew, as Consul does.
	SessionTTLMultiplier = 2
	// MaxSessionChecks bounds the checks one session may name; each is
	// looked up on every change to a check of its node.
	MaxSessionChecks = 64
)

// ServiceCheck names a service-level check a session depends on.
type ServiceCheck struct {
	ID        string `json:"ID"`
	Namespace string `json:"Namespace"`
}

// Session is a Consul session: held by a node, invalidated with its checks
// or TTL, releasing (or deleting) the keys it locks when it goes.
type Session struct {
	ID            string         `json:"ID"`
	Name          string         `json:"Name"`
	Node          string         `json:"Node"`
	NodeChecks    []string       `json:"NodeChecks"`
	ServiceChecks []ServiceCheck `json:"ServiceChecks"`
	// LockDelay is a duration; JSON carries it as nanoseconds (Consul's).
	LockDelay   time.Duration `json:"LockDelay"`
	Behavior    string        `json:"Behavior"`
	TTL         string        `json:"TTL"`
	CreateIndex uint64        `json:"CreateIndex"`
	ModifyIndex uint64        `json:"ModifyIndex"`
}

// CheckIDs returns every check the session depends on (all on its node).
func (s *Session) CheckIDs() []string {
	out := make([]string, 0, len(s.NodeChecks)+len(s.ServiceChecks))
	out = append(out, s.NodeChecks...)
	for _, c := range s.ServiceChecks {
		out = append(out, c.ID)
	}
	return out
}

// TTLDuration parses TTL ("" = none, 0).
func (s *Session) TTLDuration() (time.Duration, error) {
	if s.TTL == "" {
		return 0, nil
	}
	return time.ParseDuration(s.TTL)
}

// SessionOp is a SessionRequest verb.
type SessionOp string

const (
	SessionCreate  SessionOp = "create"
	SessionDestroy SessionOp = "destroy"
	// SessionLock and SessionUnlock are KV ?acquire and ?release: DirEnt
	// names the key, its value and flags, and the session.
	SessionLock   SessionOp = "lock"
	SessionUnlock SessionOp = "unlock"
)

// KV lock verbs (Consul's KVOp names); the KV apply endpoint turns them
// into a SessionRequest.
const (
	KVLock   KVOp = "lock"
	KVUnlock KVOp = "unlock"
)

// SessionRequest is a session write: Op with Session (create: the whole
// session, ID set by the caller; destroy: Session.ID) or DirEnt (lock,
// unlock: DirEnt.Session holds the session ID).
type SessionRequest struct {
	Datacenter string
	Op         SessionOp
	Session    Session
	DirEnt     DirEntry
}

// Validate checks names, verbs and the session's limits. The TTL's lower
// bound is the server's configuration and is checked there.
func (r *SessionRequest) Validate() error {
	if err := ValidateName("Datacenter", r.Datacenter); err != nil {
		return err
	}
	switch r.Op {
	case SessionCreate:
		return r.Session.Validate()
	case SessionDestroy:
		if r.Session.ID == "" {
			return &FieldError{"ID", "missing session ID"}
		}
		return ValidateName("ID", r.Session.ID)
	case SessionLock, SessionUnlock:
		if r.DirEnt.Session == "" {
			return &FieldError{"Session", "missing session ID"}
		}
		if err := ValidateName("Session", r.DirEnt.Session); err != nil {
			return err
		}
		return (&KVSRequest{Datacenter: r.Datacenter, DirEnt: r.DirEnt}).Validate()
	}
	return &FieldError{"Op", fmt.Sprintf("unknown session op %q", r.Op)}
}

// Validate checks a session to create.
func (s *Session) Validate() error {
	for _, f := range []struct{ field, val string }{
		{"ID", s.ID}, {"Name", s.Name}, {"Node", s.Node},
	} {
		if err := ValidateName(f.field, f.val); err != nil {
			return err
		}
	}
	if s.ID == "" {
		return &FieldError{"ID", "missing session ID"}
	}
	if s.Node == "" {
		return &FieldError{"Node", "missing node name"}
	}
	if n := len(s.NodeChecks) + len(s.ServiceChecks); n > MaxSessionChecks {
		return &FieldError{"Checks", fmt.Sprintf("%d checks, at most %d allowed", n, MaxSessionChecks)}
	}
	for i, c := range s.NodeChecks {
		if err := ValidateName("NodeChecks["+strconv.Itoa(i)+"]", c); err != nil {
			return err
		}
	}
	for i, c := range s.ServiceChecks {
		if err := ValidateName("ServiceChecks["+strconv.Itoa(i)+"].ID", c.ID); err != nil {
			return err
		}
	}
	switch s.Behavior {
	case "", SessionKeysRelease, SessionKeysDelete:
	default:
		return &FieldError{"Behavior", fmt.Sprintf("invalid behavior %q: want %q or %q", s.Behavior, SessionKeysRelease, SessionKeysDelete)}
	}
	if s.LockDelay < 0 || s.LockDelay > MaxLockDelay {
		return &FieldError{"LockDelay", fmt.Sprintf("%v is outside [0s, %v]", s.LockDelay, MaxLockDelay)}
	}
	ttl, err := s.TTLDuration()
	if err != nil {
		return &FieldError{"TTL", fmt.Sprintf("invalid duration %q", s.TTL)}
	}
	if ttl < 0 || ttl > SessionTTLMax {
		return &FieldError{"TTL", fmt.Sprintf("%v is outside [0s, %v]", ttl, SessionTTLMax)}
	}
	return nil
}

// SessionSpecificRequest reads one session (or, for Renew, renews it).
type SessionSpecificRequest struct {
	Datacenter string
	SessionID  string
	QueryOptions
}

// IndexedSessions is a list of sessions with the sessions table's index.
type IndexedSessions struct {
	Sessions []*Session
	QueryMeta
}

// Session RPC methods.
const (
	MethodSessionApply = "Session.Apply"        // SessionRequest → WriteResponse (Success false: lock not taken)
	MethodSessionGet   = "Session.Get"          // SessionSpecificRequest → IndexedSessions (0 or 1)
	MethodSessionList  = "Session.List"         // DCSpecificRequest → IndexedSessions
	MethodSessionNode  = "Session.NodeSessions" // NodeSpecificRequest → IndexedSessions
	MethodSessionRenew = "Session.Renew"        // SessionSpecificRequest → IndexedSessions (empty: no such session)
)
