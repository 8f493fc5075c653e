package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

func encode(t testing.TB, mt structs.MessageType, msg any) []byte {
	t.Helper()
	b, err := structs.Encode(mt, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cmd(idx uint64, data []byte) *raft.Log {
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
}

func kvs(t testing.TB, op structs.KVOp, key, value string, modify uint64) []byte {
	return encode(t, structs.KVSRequestType, &structs.KVSRequest{Op: op, DirEnt: structs.DirEntry{Key: key, Value: []byte(value), ModifyIndex: modify}})
}

func TestApplyCommands(t *testing.T) {
	f := New(nil)
	reg := &structs.RegisterRequest{
		Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{Service: "web", Port: 80, Tags: []string{"v1"}},
		Check:   &structs.HealthCheck{CheckID: "web-ok", ServiceID: "web", Status: structs.HealthPassing},
	}
	steps := []struct {
		name string
		data []byte
		want any
	}{
		{"register", encode(t, structs.RegisterRequestType, reg), nil},
		{"register without address", encode(t, structs.RegisterRequestType, &structs.RegisterRequest{Node: "n2"}), structs.ErrMissingAddress},
		{"kv set", kvs(t, structs.KVSet, "a/b", "1", 0), nil},
		{"kv set 2", kvs(t, structs.KVSet, "a/c", "2", 0), nil},
		{"kv cas stale", kvs(t, structs.KVCAS, "a/b", "x", 1), false},
		{"kv cas current", kvs(t, structs.KVCAS, "a/b", "x", 3), true},
		{"kv delete-cas stale", kvs(t, structs.KVDeleteCAS, "a/b", "", 3), false},
		{"kv delete-cas current", kvs(t, structs.KVDeleteCAS, "a/b", "", 6), true},
		{"kv delete", kvs(t, structs.KVDelete, "a/c", "", 0), nil},
		{"kv set 3", kvs(t, structs.KVSet, "t/1", "", 0), nil},
		{"kv delete-tree", kvs(t, structs.KVDeleteTree, "t/", "", 0), nil},
		{"deregister service", encode(t, structs.DeregisterRequestType, &structs.DeregisterRequest{Node: "n1", ServiceID: "web"}), nil},
	}
	for i, st := range steps {
		got := f.Apply(cmd(uint64(i+1), st.data))
		if wantErr, ok := st.want.(error); ok {
			if err, _ := got.(error); !errors.Is(err, wantErr) {
				t.Fatalf("%s: got %v, want %v", st.name, got, wantErr)
			}
			continue
		}
		if got != st.want {
			t.Fatalf("%s: got %#v, want %#v", st.name, got, st.want)
		}
	}
	s := f.State()
	if _, n := s.Node("n1"); n == nil || n.CreateIndex != 1 {
		t.Fatalf("node: %+v", n)
	}
	if _, sns := s.ServiceNodes("web", ""); len(sns) != 0 {
		t.Fatalf("service not deregistered: %+v", sns)
	}
	if _, checks := s.NodeChecks("n1"); len(checks) != 0 {
		t.Fatalf("service check not removed: %+v", checks)
	}
	if idx, l := s.KVSList(""); len(l) != 0 || idx != 11 {
		t.Fatalf("KV left: %d %+v", idx, l)
	}
	if s.TableIndex(state.TableServices) != 12 {
		t.Fatalf("services index %d", s.TableIndex(state.TableServices))
	}
	if f.Applied() != uint64(len(steps)) {
		t.Fatalf("Applied() = %d, want %d", f.Applied(), len(steps))
	}
}

func TestApplyRejectsBadEntries(t *testing.T) {
	f := New(nil)
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"empty":      {nil, nil},
		"bad body":   {[]byte{byte(structs.RegisterRequestType), 1, 0xc1}, structs.ErrBadCommand},
		"unknown op": {encode(t, structs.KVSRequestType, &structs.KVSRequest{Op: "lock", DirEnt: structs.DirEntry{Key: "k"}}), nil},
	} {
		got := f.Apply(cmd(1, tc.data))
		err, ok := got.(error)
		if !ok {
			t.Errorf("%s: got %#v, want an error", name, got)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	if f.State().Index() != 0 {
		t.Fatalf("rejected entries changed the state: index %d", f.State().Index())
	}
	// Non-command entries are ignored and not counted.
	before := f.Applied()
	out := f.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogConfiguration, Data: []byte{1, 2, 3}}})
	if len(out) != 1 || out[0] != nil || f.Applied() != before {
		t.Fatalf("configuration entry: %#v, applied %d->%d", out, before, f.Applied())
	}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { m.closed = true; return nil }

func snapshotRestore(t testing.TB, from *FSM) *FSM {
	t.Helper()
	snap, err := from.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	to := New(nil)
	if err := to.Restore(readCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	return to
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestRestoreSwapsAndAbandons(t *testing.T) {
	src := New(nil)
	src.Apply(cmd(1, kvs(t, structs.KVSet, "k", "v", 0)))
	dst := New(nil)
	old := dst.State()
	restored := snapshotRestore(t, src)
	snap, _ := restored.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(readCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if dst.State() == old {
		t.Fatal("Restore did not swap the store")
	}
	select {
	case <-old.AbandonCh():
	default:
		t.Fatal("old store not abandoned")
	}
	if _, e := dst.State().KVSGet("k"); e == nil || string(e.Value) != "v" || e.CreateIndex != 1 {
		t.Fatalf("restored entry %+v", e)
	}
	if err := dst.Restore(readCloser{bytes.NewReader([]byte{0x01})}); err == nil {
		t.Fatal("garbage snapshot restored")
	}
}

// canonicalDump renders every table of f's store through the public read
// API, indexes included; nil and empty collections print alike.
func canonicalDump(f *FSM) string {
	s := f.State()
	var b strings.Builder
	for _, tb := range []state.Table{state.TableNodes, state.TableServices, state.TableChecks, state.TableKVS} {
		fmt.Fprintf(&b, "%s=%d ", tb, s.TableIndex(tb))
	}
	b.WriteByte('\n')
	_, nodes := s.Nodes()
	for _, n := range nodes {
		fmt.Fprintf(&b, "node %+v\n", *n)
		_, ns := s.NodeServices(n.Node)
		ids := make([]string, 0, len(ns.Services))
		for id := range ns.Services {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			sv := *ns.Services[id]
			w := "nil"
			if sv.Weights != nil {
				w = fmt.Sprintf("%+v", *sv.Weights)
			}
			sv.Weights = nil
			fmt.Fprintf(&b, "  svc %+v weights=%s\n", sv, w)
		}
		_, checks := s.NodeChecks(n.Node)
		for _, c := range checks {
			fmt.Fprintf(&b, "  check %+v\n", *c)
		}
	}
	// Derived views: service listing and the health rows.
	_, svcs := s.Services()
	names := make([]string, 0, len(svcs))
	for name := range svcs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "service %s tags=%v\n", name, svcs[name])
		_, csns := s.CheckServiceNodes(name, "", false)
		for _, c := range csns {
			fmt.Fprintf(&b, "  %s/%s %s", c.Node.Node, c.Service.ID, c.AggregatedStatus())
			for _, hc := range c.Checks {
				fmt.Fprintf(&b, " %s=%s@%d", hc.CheckID, hc.Status, hc.ModifyIndex)
			}
			b.WriteByte('\n')
		}
		_, passing := s.CheckServiceNodes(name, "", true)
		_, sns := s.ServiceNodes(name, "")
		fmt.Fprintf(&b, "  passing=%d rows=%d\n", len(passing), len(sns))
	}
	fmt.Fprintf(&b, "tombstones=%d\n", s.Tombstones())
	_, l := s.KVSList("")
	for _, e := range l {
		fmt.Fprintf(&b, "kv %s value=%q flags=%d lock=%d session=%q idx=%d/%d\n", e.Key, e.Value, e.Flags, e.LockIndex, e.Session, e.CreateIndex, e.ModifyIndex)
	}
	return b.String()
}

// randomCommands returns n encoded commands over a small name space so
// that updates, conflicts, rejections and deletes are frequent.
func randomCommands(t testing.TB, seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	statuses := []string{structs.HealthPassing, structs.HealthPassing, structs.HealthWarning, structs.HealthCritical, structs.HealthMaint}
	out := make([][]byte, 0, n)
	for len(out) < n {
		node := fmt.Sprintf("node-%d", rng.IntN(8))
		svcID := fmt.Sprintf("svc-%d", rng.IntN(4))
		key := fmt.Sprintf("%s/%d", pick("app", "app/cfg", "lock", "x"), rng.IntN(6))
		switch r := rng.IntN(20); {
		case r < 8:
			req := &structs.RegisterRequest{
				Node: node, Address: fmt.Sprintf("10.0.0.%d", rng.IntN(3)),
				SkipNodeUpdate: rng.IntN(5) == 0,
			}
			if rng.IntN(3) == 0 {
				req.NodeMeta = map[string]string{"rack": pick("a", "b")}
			}
			if rng.IntN(4) != 0 {
				req.Service = &structs.NodeService{
					ID: svcID, Service: pick("web", "db", "cache"), Port: 80 + rng.IntN(2),
					Tags: [][]string{nil, {"v1"}, {"v1", "primary"}}[rng.IntN(3)],
				}
				if rng.IntN(4) == 0 {
					req.Service.Weights = &structs.Weights{Passing: rng.IntN(3), Warning: 1}
				}
			}
			for range rng.IntN(3) {
				c := &structs.HealthCheck{Status: statuses[rng.IntN(len(statuses))], Output: pick("", "ok", "timeout")}
				if rng.IntN(2) == 0 {
					c.CheckID = "serfHealth"
				} else {
					// Sometimes a service this request does not register: a
					// rejection when the node lacks it.
					c.ServiceID = fmt.Sprintf("svc-%d", rng.IntN(4))
					c.CheckID = "chk-" + c.ServiceID
				}
				req.Checks = append(req.Checks, c)
			}
			out = append(out, encode(t, structs.RegisterRequestType, req))
		case r < 11:
			req := &structs.DeregisterRequest{Node: node}
			switch rng.IntN(4) {
			case 0:
			case 1, 2:
				req.ServiceID = svcID
			case 3:
				req.CheckID = pick("serfHealth", "chk-"+svcID)
			}
			out = append(out, encode(t, structs.DeregisterRequestType, req))
		case r == 11 && rng.IntN(2) == 0:
			// A reap bound anywhere up to now: some tombstones go.
			out = append(out, encode(t, structs.TombstoneRequestType|structs.IgnoreUnknownTypeFlag,
				&structs.TombstoneRequest{Op: structs.TombstoneReap, ReapIndex: uint64(rng.IntN(len(out) + 1))}))
		case r == 11:
			// A transaction that applies or (a stale check) fails whole.
			var ops []structs.TxnOp
			for range 1 + rng.IntN(4) {
				verb := []structs.KVOp{structs.KVSet, structs.KVDelete, structs.KVDeleteTree, structs.KVCheckIndex, structs.KVCheckNotExists, structs.KVGet}[rng.IntN(6)]
				e := structs.DirEntry{Key: fmt.Sprintf("%s/%d", pick("app", "x"), rng.IntN(6)), Value: []byte("t")}
				if verb == structs.KVCheckIndex {
					e.ModifyIndex = uint64(rng.IntN(len(out) + 1))
				}
				ops = append(ops, structs.TxnOp{KV: &structs.TxnKVOp{Verb: verb, DirEnt: e}})
			}
			out = append(out, encode(t, structs.TxnRequestType, &structs.TxnRequest{Ops: ops}))
		default:
			op := []structs.KVOp{structs.KVSet, structs.KVSet, structs.KVSet, structs.KVCAS, structs.KVCAS, structs.KVDelete, structs.KVDeleteCAS, structs.KVDeleteTree}[rng.IntN(8)]
			e := structs.DirEntry{Key: key, Value: []byte(fmt.Sprint(rng.IntN(100))), Flags: uint64(rng.IntN(3))}
			switch op {
			case structs.KVCAS, structs.KVDeleteCAS:
				e.ModifyIndex = uint64(rng.IntN(len(out) + 1))
			case structs.KVDeleteTree:
				e.Key = pick("app/", "app/cfg", "x/", "lock/1")
			}
			out = append(out, encode(t, structs.KVSRequestType, &structs.KVSRequest{Op: op, DirEnt: e}))
		}
	}
	return out
}

// applyAll applies cmds starting at index start, alternating single
// applies and batches of random size, and returns the responses.
func applyAll(f *FSM, cmds [][]byte, start uint64, rng *rand.Rand) []string {
	var resp []string
	for i := 0; i < len(cmds); {
		n := min(1+rng.IntN(64), len(cmds)-i)
		logs := make([]*raft.Log, n)
		for j := range logs {
			logs[j] = cmd(start+uint64(i+j), cmds[i+j])
		}
		var out []any
		if n == 1 {
			out = []any{f.Apply(logs[0])}
		} else {
			out = f.ApplyBatch(logs)
		}
		for _, o := range out {
			if tr, ok := o.(*structs.TxnResponse); ok {
				// Results hold pointers: render what they point at.
				var b strings.Builder
				for _, r := range tr.Results {
					fmt.Fprintf(&b, "%+v ", *r.KV)
				}
				o = fmt.Sprintf("txn results=[%s] errors=%v", b.String(), tr.Errors)
			}
			resp = append(resp, fmt.Sprint(o))
		}
		i += n
	}
	return resp
}

// TestPropertySnapshotRestoreAndDeterminism: the same random history
// applied to two FSMs (with different batching) gives identical state and
// responses, and a snapshot restored into a fresh FSM is identical too and
// stays identical as the history continues.
func TestPropertySnapshotRestoreAndDeterminism(t *testing.T) {
	const n = 3000
	for _, seed := range []uint64{1, 2, 3, 42, 1234} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cmds := randomCommands(t, seed, 2*n)
			a, b := New(nil), New(nil)
			ra := applyAll(a, cmds[:n], 1, rand.New(rand.NewPCG(seed, 1)))
			rb := applyAll(b, cmds[:n], 1, rand.New(rand.NewPCG(seed, 2)))
			if !slices.Equal(ra, rb) {
				t.Fatal("responses differ between replicas")
			}
			da := canonicalDump(a)
			if db := canonicalDump(b); da != db {
				t.Fatalf("replicas differ:\n%s", firstDiff(da, db))
			}
			// The history must exercise every outcome, or it tests little.
			errs := 0
			for _, r := range ra {
				if strings.HasPrefix(r, "state:") || strings.HasPrefix(r, "missing") {
					errs++
				}
			}
			if errs == 0 || !slices.Contains(ra, "true") || !slices.Contains(ra, "false") ||
				!strings.Contains(da, "\nkv ") || !strings.Contains(da, "  svc ") || !strings.Contains(da, " critical") {
				t.Fatalf("history too thin (%d rejections):\n%s", errs, da)
			}
			t.Logf("%d rejections, %d dump lines", errs, strings.Count(da, "\n"))

			c := snapshotRestore(t, a)
			if dc := canonicalDump(c); dc != da {
				t.Fatalf("restored state differs:\n%s", firstDiff(da, dc))
			}
			// The restored FSM keeps behaving like the original.
			ra = applyAll(a, cmds[n:], n+1, rand.New(rand.NewPCG(seed, 3)))
			rc := applyAll(c, cmds[n:], n+1, rand.New(rand.NewPCG(seed, 4)))
			if !slices.Equal(ra, rc) {
				t.Fatal("responses differ after restore")
			}
			if da, dc := canonicalDump(a), canonicalDump(c); da != dc {
				t.Fatalf("states diverge after restore:\n%s", firstDiff(da, dc))
			}
		})
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(equal)"
}

func BenchmarkApplyRegister(b *testing.B) {
	const batch = 64
	f := New(nil)
	// 4096 distinct registrations whose check flips status each round, so
	// every apply is a real write.
	var cmds [2][][]byte
	for round := range cmds {
		status := []string{structs.HealthPassing, structs.HealthCritical}[round]
		for i := range 4096 {
			cmds[round] = append(cmds[round], encode(b, structs.RegisterRequestType, &structs.RegisterRequest{
				Node: fmt.Sprintf("node-%d", i), Address: "10.1.2.3",
				Service: &structs.NodeService{Service: "web", Port: 80, Tags: []string{"v1"}},
				Checks: []*structs.HealthCheck{
					{CheckID: "serfHealth", Status: structs.HealthPassing},
					{CheckID: "web-http", ServiceID: "web", Status: status},
				},
			}))
		}
	}
	logs := make([]*raft.Log, batch)
	var idx uint64
	var pos int
	b.ReportAllocs()
	for b.Loop() {
		for j := range logs {
			idx++
			round := (pos / 4096) % 2
			logs[j] = &raft.Log{Index: idx, Type: raft.LogCommand, Data: cmds[round][pos%4096]}
			pos++
		}
		for _, r := range f.ApplyBatch(logs) {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "registrations/s")
}

func TestApplySessionCommands(t *testing.T) {
	f := New(nil)
	sess := func(op structs.SessionOp, s structs.Session, e structs.DirEntry) []byte {
		return encode(t, structs.SessionRequestType, &structs.SessionRequest{Op: op, Session: s, DirEnt: e})
	}
	steps := []struct {
		name string
		data []byte
		want any
	}{
		{"register", encode(t, structs.RegisterRequestType, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
			Check: &structs.HealthCheck{CheckID: structs.SerfCheckID, Status: structs.HealthPassing}}), nil},
		{"create", sess(structs.SessionCreate, structs.Session{ID: "s1", Node: "n1", NodeChecks: []string{structs.SerfCheckID}, LockDelay: time.Second}, structs.DirEntry{}), nil},
		{"create on unknown node", sess(structs.SessionCreate, structs.Session{ID: "s2", Node: "zz"}, structs.DirEntry{}), structs.ErrUnknownNode},
		{"lock", sess(structs.SessionLock, structs.Session{}, structs.DirEntry{Key: "k", Session: "s1"}), true},
		{"lock unknown session", sess(structs.SessionLock, structs.Session{}, structs.DirEntry{Key: "k", Session: "zz"}), state.ErrInvalidSession},
		{"unlock", sess(structs.SessionUnlock, structs.Session{}, structs.DirEntry{Key: "k", Session: "s1"}), true},
		{"unlock again", sess(structs.SessionUnlock, structs.Session{}, structs.DirEntry{Key: "k", Session: "s1"}), false},
		{"relock", sess(structs.SessionLock, structs.Session{}, structs.DirEntry{Key: "k", Session: "s1"}), true},
		{"destroy", sess(structs.SessionDestroy, structs.Session{ID: "s1"}, structs.DirEntry{}), nil},
		{"unknown op", sess("bogus", structs.Session{}, structs.DirEntry{}), errors.New("unknown session op")},
	}
	for i, st := range steps {
		got := f.Apply(cmd(uint64(i+1), st.data))
		if wantErr, ok := st.want.(error); ok {
			err, _ := got.(error)
			if err == nil || (!errors.Is(err, wantErr) && !strings.Contains(err.Error(), wantErr.Error())) {
				t.Fatalf("%s: got %v, want %v", st.name, got, wantErr)
			}
			continue
		}
		if got != st.want {
			t.Fatalf("%s: got %#v, want %#v", st.name, got, st.want)
		}
	}
	s := f.State()
	if _, got := s.SessionGet("s1"); got != nil {
		t.Fatalf("destroyed session still there: %+v", got)
	}
	if _, e := s.KVSGet("k"); e == nil || e.Session != "" || e.LockIndex != 2 {
		t.Fatalf("key after destroy: %+v", e)
	}
	if s.KVSLockDelay("k").IsZero() {
		t.Fatal("no lock-delay after invalidation")
	}
}
