package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind names an operation of the workloads.
type Kind string

const (
	KindGet        Kind = "get"        // GET /v1/kv/<r>?consistent
	KindPut        Kind = "put"        // PUT /v1/kv/<r>
	KindCAS        Kind = "cas"        // PUT /v1/kv/<r>?cas=<index read before>
	KindInsert     Kind = "insert"     // PUT /v1/kv/u/<unique>?cas=0
	KindRegister   Kind = "register"   // PUT /v1/catalog/register (one new instance)
	KindDeregister Kind = "deregister" // PUT /v1/catalog/deregister
	KindReadSet    Kind = "read-set"   // GET /v1/catalog/service/<s>?consistent
	KindAcquire    Kind = "acquire"    // PUT /v1/kv/<lock>?acquire=<session>
	KindRelease    Kind = "release"    // PUT /v1/kv/<lock>?release=<session>
	KindLockRead   Kind = "lock-read"  // GET /v1/kv/<lock>?consistent: its holder
)

// Outcome of an operation as the client saw it.
type Outcome string

const (
	OK      Outcome = "ok"      // write acknowledged true, or read answered
	Fail    Outcome = "fail"    // write answered false (CAS compare did not hold)
	Unknown Outcome = "unknown" // error or timeout: may or may not have applied
	// Refused: the connection was refused (the node is down), so the
	// request never reached a server. It did nothing; the checks skip it.
	Refused Outcome = "refused"
)

// Op is one invocation and its response. Values written are unique per
// operation, which is what makes a second application detectable.
type Op struct {
	Process int    // client process; a new one after every unknown outcome
	Node    string // server whose HTTP API the client used
	Kind    Kind
	Key     string // KV key, or the service instance ID
	Value   string // value written (put, cas, insert)
	// Expect is the value the CAS index was read with ("" = absent, index 0).
	Expect      string
	ExpectIndex uint64
	Call        int64 // ns since trial start
	Return      int64 // ns since trial start; meaningless when Unknown
	Outcome     Outcome
	Found       bool     // get: key present
	Read        string   // get: value read
	ReadIndex   uint64   // get: ModifyIndex read
	Set         []string // read-set: instance IDs read
	Session     string   // acquire, release: the client's session; lock-read: the holder read ("" = free)
	Err         string
	Final       bool // a read made by the checker after heal
}

func (o Op) String() string {
	var b strings.Builder
	ret := fmt.Sprintf("%.3f", float64(o.Return)/1e9)
	if o.Outcome == Unknown || o.Outcome == Refused {
		ret = "?"
	}
	fmt.Fprintf(&b, "[%.3f,%s] p%d via %s  %s %s", float64(o.Call)/1e9, ret, o.Process, o.Node, o.Kind, o.Key)
	switch o.Kind {
	case KindPut, KindInsert:
		fmt.Fprintf(&b, " %s", o.Value)
	case KindCAS:
		fmt.Fprintf(&b, " %s (expect %q @%d)", o.Value, o.Expect, o.ExpectIndex)
	case KindAcquire, KindRelease:
		fmt.Fprintf(&b, " by %s", shortSession(o.Session))
	}
	switch {
	case o.Outcome == Unknown, o.Outcome == Refused:
		fmt.Fprintf(&b, " -> %s: %s", o.Outcome, o.Err)
	case o.Kind == KindGet && !o.Found:
		b.WriteString(" -> absent")
	case o.Kind == KindGet:
		fmt.Fprintf(&b, " -> %s @%d", o.Read, o.ReadIndex)
	case o.Kind == KindReadSet:
		fmt.Fprintf(&b, " -> %v", o.Set)
	case o.Kind == KindLockRead && o.Session == "":
		b.WriteString(" -> free")
	case o.Kind == KindLockRead:
		fmt.Fprintf(&b, " -> held by %s", shortSession(o.Session))
	default:
		fmt.Fprintf(&b, " -> %v", o.Outcome == OK)
	}
	if o.Final {
		b.WriteString("  (final)")
	}
	return b.String()
}

// shortSession is a session ID's first 8 characters, enough to tell the
// workload's few sessions apart in a history.
func shortSession(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// History collects operations from concurrent clients.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
	notes []string
}

func newHistory(start time.Time) *History { return &History{start: start} }

func (h *History) now() int64 { return int64(time.Since(h.start)) }

func (h *History) add(o Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
}

// note records a nemesis event in the history's text form.
func (h *History) note(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notes = append(h.notes, fmt.Sprintf("[%.3f] nemesis: %s", float64(h.now())/1e9, fmt.Sprintf(format, args...)))
}

// Ops returns a copy sorted by invocation time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := append([]Op(nil), h.ops...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// WriteText writes the history, nemesis notes interleaved, one op a line.
func (h *History) WriteText(w io.Writer) error {
	ops := h.Ops()
	h.mu.Lock()
	notes := append([]string(nil), h.notes...)
	h.mu.Unlock()
	lines := make([]string, 0, len(ops)+len(notes))
	for _, o := range ops {
		lines = append(lines, o.String())
	}
	lines = append(lines, notes...)
	sort.SliceStable(lines, func(i, j int) bool { return lineTime(lines[i]) < lineTime(lines[j]) })
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

func lineTime(l string) float64 {
	var t float64
	_, _ = fmt.Sscanf(strings.TrimPrefix(l, "["), "%f", &t)
	return t
}
