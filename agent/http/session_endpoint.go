package http

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// lockDelaySecondsBelow is Consul's rule for a bare-number LockDelay: a
// value under it is seconds (clients send 15), at or above it
// nanoseconds (clients send time.Duration values).
const lockDelaySecondsBelow = 1000

// sessionCreateBody is /v1/session/create's body. Pointers tell "absent"
// from "empty": NodeChecks [] means no node checks, absent means the
// default (serfHealth) unless other checks are named.
type sessionCreateBody struct {
	Name          string
	Node          string
	Checks        *[]string
	NodeChecks    *[]string
	ServiceChecks *[]structs.ServiceCheck
	LockDelay     json.RawMessage
	Behavior      string
	TTL           string
	// Namespace is accepted and ignored (Consul Enterprise's field; the
	// official client may send it empty).
	Namespace string
}

// sessionOut is a session as Consul's API shows it: Checks (deprecated)
// lists every check, node and service.
type sessionOut struct {
	ID            string                 `json:"ID"`
	Name          string                 `json:"Name"`
	Node          string                 `json:"Node"`
	LockDelay     time.Duration          `json:"LockDelay"`
	Behavior      string                 `json:"Behavior"`
	TTL           string                 `json:"TTL"`
	Checks        []string               `json:"Checks"`
	NodeChecks    []string               `json:"NodeChecks"`
	ServiceChecks []structs.ServiceCheck `json:"ServiceChecks"`
	CreateIndex   uint64                 `json:"CreateIndex"`
	ModifyIndex   uint64                 `json:"ModifyIndex"`
}

func sessionsOut(in []*structs.Session) []sessionOut {
	out := make([]sessionOut, 0, len(in))
	for _, s := range in {
		out = append(out, sessionOut{
			ID: s.ID, Name: s.Name, Node: s.Node, LockDelay: s.LockDelay, Behavior: s.Behavior, TTL: s.TTL,
			Checks: s.CheckIDs(), NodeChecks: s.NodeChecks, ServiceChecks: s.ServiceChecks,
			CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
		})
	}
	return out
}

// parseLockDelay reads LockDelay as Consul does: a duration string
// ("15s"), or a number (seconds below lockDelaySecondsBelow, else ns).
func parseLockDelay(raw json.RawMessage) (time.Duration, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, badRequest("Invalid LockDelay: %v", err)
	}
	switch v := v.(type) {
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, badRequest("Invalid LockDelay %q: want a duration such as \"15s\"", v)
		}
		return d, nil
	case float64:
		if v != float64(int64(v)) {
			return 0, badRequest("Invalid LockDelay %v: want a whole number", v)
		}
		if v < lockDelaySecondsBelow {
			return time.Duration(v) * time.Second, nil
		}
		return time.Duration(v), nil
	}
	return 0, badRequest("Invalid LockDelay: want a duration string or a number")
}

// newSessionID returns a random UUID (version 4), as Consul's IDs.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session ID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// sessionCreate serves PUT /v1/session/create. An absent body takes every
// default: the agent's node, serfHealth, 15s lock-delay, release.
func (a *handler) sessionCreate(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var body sessionCreateBody
	b, err := readBody(r, MaxJSONBody)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := invalidUTF8(b); err != nil {
			return err
		}
		if err := config.DecodeStrict(b, &body); err != nil {
			return badRequest("Request decode failed: %v", err)
		}
	}
	sess := structs.Session{
		Name: body.Name, Node: body.Node, Behavior: body.Behavior, TTL: body.TTL,
		LockDelay: structs.DefaultLockDelay,
	}
	if sess.Node == "" {
		sess.Node = a.b.NodeName()
	}
	if len(body.LockDelay) > 0 && string(body.LockDelay) != "null" {
		if sess.LockDelay, err = parseLockDelay(body.LockDelay); err != nil {
			return err
		}
	}
	// Checks (deprecated) are node checks; with no checks named at all
	// the session watches the node's serfHealth, as Consul's.
	switch {
	case body.Checks == nil && body.NodeChecks == nil && body.ServiceChecks == nil:
		sess.NodeChecks = []string{structs.SerfCheckID}
	default:
		if body.NodeChecks != nil {
			sess.NodeChecks = append(sess.NodeChecks, *body.NodeChecks...)
		}
		if body.Checks != nil {
			for _, c := range *body.Checks {
				if !containsString(sess.NodeChecks, c) {
					sess.NodeChecks = append(sess.NodeChecks, c)
				}
			}
		}
		if body.ServiceChecks != nil {
			sess.ServiceChecks = *body.ServiceChecks
		}
	}
	if sess.ID, err = newSessionID(); err != nil {
		return err
	}
	args := structs.SessionRequest{Datacenter: a.datacenter(r.URL.Query()), Op: structs.SessionCreate, Session: sess}
	if err := validateWrite(&args); err != nil {
		return err
	}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodSessionApply, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, map[string]string{"ID": sess.ID})
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// sessionDestroy serves PUT /v1/session/destroy/<id>: true, also for an
// unknown session (Consul's).
func (a *handler) sessionDestroy(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("session ID", id); err != nil {
		return err
	}
	args := structs.SessionRequest{Datacenter: a.datacenter(r.URL.Query()), Op: structs.SessionDestroy, Session: structs.Session{ID: id}}
	if err := validateWrite(&args); err != nil {
		return err
	}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodSessionApply, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, true)
}

// sessionRenew serves PUT /v1/session/renew/<id>: the session in a list,
// or 404 once it is gone.
func (a *handler) sessionRenew(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("session ID", id); err != nil {
		return err
	}
	args := structs.SessionSpecificRequest{Datacenter: a.datacenter(r.URL.Query()), SessionID: id}
	var out structs.IndexedSessions
	if err := a.b.RPC(r.Context(), structs.MethodSessionRenew, &args, &out); err != nil {
		return err
	}
	if len(out.Sessions) == 0 {
		writeText(w, nethttp.StatusNotFound, "Session id '"+id+"' not found")
		return nil
	}
	return writeJSON(w, r, sessionsOut(out.Sessions))
}

// sessionInfo serves GET /v1/session/info/<id>.
func (a *handler) sessionInfo(w nethttp.ResponseWriter, r *nethttp.Request, id string) error {
	if err := validName("session ID", id); err != nil {
		return err
	}
	args := structs.SessionSpecificRequest{SessionID: id}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	return a.sessionRead(w, r, structs.MethodSessionGet, &args)
}

// sessionNode serves GET /v1/session/node/<node>.
func (a *handler) sessionNode(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	if err := validName("node", node); err != nil {
		return err
	}
	args := structs.NodeSpecificRequest{Node: node}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	return a.sessionRead(w, r, structs.MethodSessionNode, &args)
}

// sessionList serves GET /v1/session/list.
func (a *handler) sessionList(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	return a.sessionRead(w, r, structs.MethodSessionList, &args)
}

func (a *handler) sessionRead(w nethttp.ResponseWriter, r *nethttp.Request, method string, args any) error {
	var out structs.IndexedSessions
	if err := a.b.RPC(r.Context(), method, args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	return writeJSON(w, r, sessionsOut(out.Sessions))
}

// kvLockParams reads ?acquire=<session> and ?release=<session> into args.
// Either excludes ?cas and the other.
func kvLockParams(q map[string][]string, args *structs.KVSRequest) error {
	_, acquire := q["acquire"]
	_, release := q["release"]
	_, cas := q["cas"]
	if !acquire && !release {
		return nil
	}
	if acquire && release || cas {
		return badRequest("Conflicting flags: use one of ?acquire, ?release and ?cas")
	}
	name, op := "acquire", structs.KVLock
	if release {
		name, op = "release", structs.KVUnlock
	}
	id := ""
	if vs := q[name]; len(vs) > 0 {
		id = vs[0]
	}
	if id == "" {
		return badRequest("Missing session ID for ?%s", name)
	}
	if err := validText("session ID for ?"+name, id); err != nil {
		return err
	}
	args.Op, args.DirEnt.Session = op, id
	return nil
}
