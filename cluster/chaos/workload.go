package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"syscall"
	"time"
)

// Workload limits. Clients are spread over all three servers' HTTP APIs.
const (
	// registers: few keys so clients contend on each, as in the issue.
	registers = 4
	// clients: the eight concurrent clients.
	clients = 8
	// A request with no answer in time is outcome-unknown. Half the
	// clients are patient: their timeout outlasts the longest fault, so a
	// write stuck on a paused or cut-off leader gets its definite (possibly
	// wrong) answer once the fault ends; that is how a write resubmitted
	// after raft.ErrLeadershipLost shows up as "answered false but
	// applied". The other half give up quickly and carry on, so the new
	// leader serves load while the fault lasts and the writes and reads in
	// between make a second application visible.
	patientClients = clients / 2
	patientTimeout = maxFault + 4*time.Second
	hastyTimeout   = 2 * time.Second
	// thinkTime between a client's operations bounds the load on 2 cores
	// and keeps porcupine's search small.
	thinkTime = 10 * time.Millisecond
	// maxOpsPerClient bounds each client's loop in count, whatever the
	// trial's duration.
	maxOpsPerClient = 20000
	// serviceName is the catalog service whose instances the set workload
	// registers; chaosNode is the external node they live on.
	serviceName = "chaos"
	chaosNode   = "chaos-node"
	// lockKey is the one lock every client contends for with its own
	// session. Sessions live on chaosNode with no health checks and no TTL,
	// so only the clients' own acquire and release change the holder:
	// a server killed, paused or leaving invalidates no session, and the
	// lock's history is then checked exactly, as a linearizable lock.
	lockKey = "lock/l0"
)

func registerKey(i int) string { return fmt.Sprintf("r%d", i) }

// kvEntry is the part of a /v1/kv answer the checks read.
type kvEntry struct {
	Key         string
	Value       []byte // base64 in JSON; encoding/json decodes it
	ModifyIndex uint64
	Session     string // the lock holder, if any
}

type serviceEntry struct {
	ServiceID string
}

// client is one workload process: a seeded choice of operations against
// a seeded choice of servers.
type client struct {
	id    int
	c     *Cluster
	h     *History
	rng   *rand.Rand
	next  func() int
	pid   int
	n     int
	seen  map[string]kvEntry // last value+index this client read per register
	live  []string           // instances this client registered and not yet deregistered
	count int
	// session is the client's lock session ("" until created); holds is
	// what the client believes of the lock (it only picks the next op).
	session string
	holds   bool
}

func (cl *client) run(ctx context.Context) {
	for cl.count < maxOpsPerClient && ctx.Err() == nil {
		cl.count++
		cl.step(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(thinkTime):
		}
	}
}

func (cl *client) step(ctx context.Context) {
	// Every step draws the same numbers whatever happened before, so a
	// seed fixes each client's stream of choices; only what a choice means
	// (cas or a first read, register or deregister) follows earlier answers.
	node := cl.c.Nodes[cl.rng.IntN(len(cl.c.Nodes))]
	p, key, coin := cl.rng.IntN(100), registerKey(cl.rng.IntN(registers)), cl.rng.IntN(2)
	cl.n++
	val := fmt.Sprintf("c%d-%d", cl.id, cl.n)
	op := Op{Process: cl.pid, Node: node.Name}
	timeout := hastyTimeout
	if cl.id < patientClients {
		timeout = patientTimeout
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p < 22: // consistent get
		op.Key = key
		cl.get(octx, node, &op)
	case p < 40: // blind put
		op.Kind, op.Key, op.Value = KindPut, key, val
		cl.put(octx, node, &op, "/v1/kv/"+op.Key, []byte(val))
	case p < 58: // cas on what this client last read of the key
		last, ok := cl.seen[key]
		op.Key = key
		if !ok {
			// Nothing read yet: read first (the read is an op of its own).
			cl.get(octx, node, &op)
			return
		}
		op.Kind, op.Value = KindCAS, val
		op.Expect, op.ExpectIndex = string(last.Value), last.ModifyIndex
		cl.put(octx, node, &op, fmt.Sprintf("/v1/kv/%s?cas=%d", key, last.ModifyIndex), []byte(val))
	case p < 70: // one-shot insert of a key no other op writes
		op.Kind, op.Key, op.Value = KindInsert, "u/"+val, val
		cl.put(octx, node, &op, "/v1/kv/"+op.Key+"?cas=0", []byte(val))
	case p < 84: // catalog: register a new instance, or deregister one
		if len(cl.live) == 0 || (len(cl.live) < 2 && coin == 0) {
			op.Kind, op.Key = KindRegister, "i-"+val
			body, _ := json.Marshal(map[string]any{
				"Node": chaosNode, "Address": "192.0.2.1",
				"Service": map[string]any{"ID": op.Key, "Service": serviceName, "Port": 1000 + cl.id},
			})
			cl.live = append(cl.live, op.Key)
			cl.put(octx, node, &op, "/v1/catalog/register", body)
		} else {
			op.Kind, op.Key = KindDeregister, cl.live[0]
			cl.live = cl.live[1:]
			body, _ := json.Marshal(map[string]any{"Node": chaosNode, "ServiceID": op.Key})
			cl.put(octx, node, &op, "/v1/catalog/deregister", body)
		}
	case p < 88:
		cl.readSet(octx, node, &op)
	default: // the lock: acquire, release or read its holder
		cl.lockStep(octx, node, &op, coin, val)
	}
}

// lockStep acquires the lock when the client believes it free (or reads
// it, half the time), and releases it or reads it when it believes it
// holds it. Without a session yet it makes one first (not an op: a
// session that never acquires changes nothing the checks see).
func (cl *client) lockStep(ctx context.Context, node *Node, op *Op, coin int, val string) {
	if cl.session == "" {
		id, err := createSession(ctx, cl.c, node, cl.id)
		if err != nil {
			return
		}
		cl.session = id
	}
	op.Key, op.Session = lockKey, cl.session
	switch {
	case coin == 0:
		op.Kind = KindLockRead
		op.Session = ""
		op.Call = cl.h.now()
		e, found, err := getKey(ctx, cl.c, node, lockKey, "consistent")
		op.Return = cl.h.now()
		if err != nil {
			cl.failed(op, err)
			return
		}
		op.Outcome = OK
		if found {
			op.Session = e.Session
		}
		cl.holds = op.Session == cl.session
		cl.h.add(*op)
	case cl.holds:
		op.Kind = KindRelease
		cl.put(ctx, node, op, "/v1/kv/"+lockKey+"?release="+cl.session, []byte(val))
		cl.holds = false // released, not held (false), or unknown: acquiring again is safe either way
	default:
		op.Kind = KindAcquire
		cl.put(ctx, node, op, "/v1/kv/"+lockKey+"?acquire="+cl.session, []byte(val))
		cl.holds = op.Outcome == OK
	}
}

// createSession makes a lock session on chaosNode with no checks, no TTL
// and no lock-delay (registering chaosNode first: a session needs its
// node in the catalog).
func createSession(ctx context.Context, c *Cluster, n *Node, client int) (string, error) {
	node, _ := json.Marshal(map[string]any{"Node": chaosNode, "Address": "192.0.2.1"})
	if _, err := c.put(ctx, n, "/v1/catalog/register", node); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]any{"Node": chaosNode, "Name": fmt.Sprintf("chaos-c%d", client), "NodeChecks": []string{}, "LockDelay": "0s"})
	var out struct{ ID string }
	if err := c.putJSON(ctx, n, "/v1/session/create", body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("session create answered no ID")
	}
	return out.ID, nil
}

// get runs op as a consistent read of op.Key on node and records it.
func (cl *client) get(ctx context.Context, node *Node, op *Op) {
	op.Kind = KindGet
	op.Call = cl.h.now()
	e, found, err := getKey(ctx, cl.c, node, op.Key, "consistent")
	op.Return = cl.h.now()
	cl.finishRead(op, e, found, err)
}

// put runs op as a PUT of body to path on node and records it.
func (cl *client) put(ctx context.Context, node *Node, op *Op, path string, body []byte) {
	op.Call = cl.h.now()
	ok, err := cl.c.put(ctx, node, path, body)
	op.Return = cl.h.now()
	cl.finishWrite(op, ok, err)
}

// readSet runs op as a consistent read of the chaos service's instances
// on node and records it.
func (cl *client) readSet(ctx context.Context, node *Node, op *Op) {
	op.Kind, op.Key = KindReadSet, serviceName
	op.Call = cl.h.now()
	set, err := readSet(ctx, cl.c, node, "consistent")
	op.Return = cl.h.now()
	op.Set = set
	if err != nil {
		cl.failed(op, err)
		return
	}
	op.Outcome = OK
	cl.h.add(*op)
}

func (cl *client) newProcess() { cl.pid = cl.next() }

// failed records an operation that got no answer. A refused connection
// never reached a server; anything else may have taken effect, and the
// client process is then retired, as in Jepsen: its operation stays open
// for ever, so the next one runs as a new process.
func (cl *client) failed(op *Op, err error) {
	op.Err = err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		op.Err = "timeout"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		op.Outcome = Refused
		cl.h.add(*op)
		return
	}
	op.Outcome = Unknown
	cl.h.add(*op)
	cl.newProcess()
}

func (cl *client) finishRead(op *Op, e kvEntry, found bool, err error) {
	if err != nil {
		cl.failed(op, err)
		return
	}
	op.Outcome, op.Found = OK, found
	if found {
		op.Read, op.ReadIndex = string(e.Value), e.ModifyIndex
		cl.seen[op.Key] = e
	} else {
		cl.seen[op.Key] = kvEntry{} // absent: a later cas uses index 0
	}
	cl.h.add(*op)
}

func (cl *client) finishWrite(op *Op, ok bool, err error) {
	switch {
	case err != nil:
		cl.failed(op, err)
		return
	case ok:
		op.Outcome = OK
	default:
		op.Outcome = Fail
	}
	cl.h.add(*op)
}

// getKey reads one KV key from n in the given consistency mode.
func getKey(ctx context.Context, c *Cluster, n *Node, key, mode string) (kvEntry, bool, error) {
	var out []kvEntry
	code, err := c.getJSON(ctx, n, "/v1/kv/"+key+"?"+mode, &out)
	if err != nil {
		return kvEntry{}, false, err
	}
	if code == 404 || len(out) == 0 {
		return kvEntry{}, false, nil
	}
	return out[0], true, nil
}

// listKV reads every key from n in the given consistency mode.
func listKV(ctx context.Context, c *Cluster, n *Node, mode string) (map[string]kvEntry, error) {
	var out []kvEntry
	if _, err := c.getJSON(ctx, n, "/v1/kv/?recurse&"+mode, &out); err != nil {
		return nil, err
	}
	m := make(map[string]kvEntry, len(out))
	for _, e := range out {
		m[e.Key] = e
	}
	return m, nil
}

// readSet reads the instance IDs of the workload's service from n.
func readSet(ctx context.Context, c *Cluster, n *Node, mode string) ([]string, error) {
	var out []serviceEntry
	if _, err := c.getJSON(ctx, n, "/v1/catalog/service/"+url.PathEscape(serviceName)+"?"+mode, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, s := range out {
		ids = append(ids, s.ServiceID)
	}
	sort.Strings(ids)
	return ids, nil
}
