package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// txnAgent is the dev agent of TestTxnE2E with its clients.
type txnAgent struct {
	p    *agenttest.Proc
	c    *api.Client
	http *http.Client
}

// TestTxnE2E drives /v1/txn and KV tombstones on a real dev agent with the
// official client (issue 16 parts 3 and 4). Tombstones live 2 s there.
func TestTxnE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	dir := gossipConfigDir(t, map[string]string{"kv.json": `{"kv": {"tombstone_ttl": "2s"}}`})
	p, c := devAgent(t, nil, "--config-dir", dir)
	runSteps(t, &txnAgent{p: p, c: c, http: &http.Client{Timeout: 30 * time.Second}}, []step[*txnAgent]{
		{"TenOpsAtomic", testTxnTenOps},
		{"FailingCheckIndexAbortsAll", testTxnAbort},
		{"Verbs", testTxnVerbs},
		{"LockVerbs", testTxnLockVerbs},
		{"BadInputChangesNothing", testTxnBadInput},
		{"ReadOnly", testTxnReadOnly},
		{"TombstoneBlocking", testTombstoneBlocking},
		{"TombstonesReaped", testTombstonesReaped},
	})
}

// kvState renders every key with its value and indexes, to compare the
// whole KV store before and after.
func kvState(t *testing.T, c *api.Client) string {
	t.Helper()
	pairs, _, err := c.KV().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s=%q@%d/%d flags=%d\n", p.Key, p.Value, p.CreateIndex, p.ModifyIndex, p.Flags)
	}
	return b.String()
}

func setOp(key, value string) *api.TxnOp {
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: []byte(value)}}
}

func testTxnTenOps(t *testing.T, a *txnAgent) {
	var ops api.TxnOps
	for i := range 8 {
		ops = append(ops, setOp("app/k"+strconv.Itoa(i), "v"+strconv.Itoa(i)))
	}
	ops = append(ops,
		&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: "app/k8"}},
		&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "app/k3"}})
	ok, resp, _, err := a.c.Txn().Txn(ops, nil)
	if err != nil || !ok {
		t.Fatalf("txn: ok=%v err=%v resp=%+v", ok, err, resp)
	}
	if len(resp.Errors) != 0 || len(resp.Results) != 9 {
		t.Fatalf("%d results, %d errors; want 9 and 0", len(resp.Results), len(resp.Errors))
	}
	// One Raft entry: every write carries the same index.
	idx := resp.Results[0].KV.ModifyIndex
	for i, r := range resp.Results[:8] {
		if r.KV.ModifyIndex != idx || r.KV.Value != nil {
			t.Fatalf("result %d: %+v (want index %d, no value)", i, r.KV, idx)
		}
	}
	if got := resp.Results[8].KV; got.Key != "app/k3" || string(got.Value) != "v3" {
		t.Fatalf("get result %+v", got)
	}
	pairs, _, err := a.c.KV().List("app/", nil)
	if err != nil || len(pairs) != 8 {
		t.Fatalf("list app/: %d pairs, %v", len(pairs), err)
	}
	for i, p := range pairs {
		if string(p.Value) != "v"+strconv.Itoa(i) || p.ModifyIndex != idx {
			t.Fatalf("pair %d: %+v", i, p)
		}
	}
}

func testTxnAbort(t *testing.T, a *txnAgent) {
	cur, _, err := a.c.KV().Get("app/k0", nil)
	if err != nil || cur == nil {
		t.Fatalf("get app/k0: %v", err)
	}
	for _, at := range []int{0, 4, 9} {
		t.Run("at"+strconv.Itoa(at), func(t *testing.T) {
			before := kvState(t, a.c)
			var ops api.TxnOps
			for i := range 10 {
				switch {
				case i == at:
					ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "app/k0", Index: cur.ModifyIndex + 1000}})
				case i%3 == 0:
					ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: "app/k" + strconv.Itoa(i%8)}})
				case i%3 == 1:
					ops = append(ops, setOp("app/new"+strconv.Itoa(i), "n"))
				default:
					ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteTree, Key: "app/k"}})
				}
			}
			ok, resp, _, err := a.c.Txn().Txn(ops, nil)
			if err != nil || ok {
				t.Fatalf("txn with a failing check-index: ok=%v err=%v", ok, err)
			}
			if len(resp.Errors) != 1 || resp.Errors[0].OpIndex != at || !strings.Contains(resp.Errors[0].What, "index") || len(resp.Results) != 0 {
				t.Fatalf("errors %+v results %d, want one error at op %d", resp.Errors, len(resp.Results), at)
			}
			if after := kvState(t, a.c); after != before {
				t.Fatalf("aborted txn changed the store\nbefore:\n%safter:\n%s", before, after)
			}
		})
	}
	// The status is Consul's 409, with the errors as JSON.
	code, body := a.put(t, "/v1/txn", `[{"KV":{"Verb":"check-index","Key":"app/k0","Index":1}}]`)
	if code != http.StatusConflict || !strings.Contains(body, `"OpIndex":0`) {
		t.Fatalf("failing check-index: %d %s", code, body)
	}
}

// put sends body to path and returns the status and body.
func (a *txnAgent) put(t *testing.T, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+a.p.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testTxnVerbs runs each verb through the client on keys under v/, in
// order: each case sees the ones before it.
func testTxnVerbs(t *testing.T, a *txnAgent) {
	kv := func(verb api.KVOp, key, value string, index uint64) *api.TxnOp {
		o := &api.KVTxnOp{Verb: verb, Key: key, Index: index}
		if value != "" {
			o.Value = []byte(value)
		}
		return &api.TxnOp{KV: o}
	}
	setIdx := func() uint64 {
		p, _, err := a.c.KV().Get("v/a", nil)
		if err != nil || p == nil {
			t.Fatalf("v/a: %v", err)
		}
		return p.ModifyIndex
	}
	type check func(t *testing.T, resp *api.TxnResponse)
	results := func(want ...string) check {
		return func(t *testing.T, resp *api.TxnResponse) {
			var got []string
			for _, r := range resp.Results {
				got = append(got, r.KV.Key+"="+string(r.KV.Value))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("results %v, want %v", got, want)
			}
		}
	}
	cases := []struct {
		name string
		ops  func() api.TxnOps
		ok   bool
		want check
	}{
		{"set", func() api.TxnOps { return api.TxnOps{kv(api.KVSet, "v/a", "1", 0), kv(api.KVSet, "v/b", "2", 0)} }, true, results("v/a=", "v/b=")},
		{"get", func() api.TxnOps { return api.TxnOps{kv(api.KVGet, "v/a", "", 0)} }, true, results("v/a=1")},
		{"get missing", func() api.TxnOps { return api.TxnOps{kv(api.KVGet, "v/zz", "", 0)} }, false, nil},
		{"get-tree", func() api.TxnOps { return api.TxnOps{kv(api.KVGetTree, "v/", "", 0)} }, true, results("v/a=1", "v/b=2")},
		{"cas stale", func() api.TxnOps { return api.TxnOps{kv(api.KVCAS, "v/a", "x", setIdx()+99)} }, false, nil},
		{"cas", func() api.TxnOps { return api.TxnOps{kv(api.KVCAS, "v/a", "3", setIdx())} }, true, results("v/a=")},
		{"check-index", func() api.TxnOps { return api.TxnOps{kv(api.KVCheckIndex, "v/a", "", setIdx())} }, true, results("v/a=")},
		{"check-not-exists", func() api.TxnOps { return api.TxnOps{kv(api.KVCheckNotExists, "v/c", "", 0)} }, true, results()},
		{"check-not-exists fails", func() api.TxnOps { return api.TxnOps{kv(api.KVCheckNotExists, "v/a", "", 0)} }, false, nil},
		{"check-session", func() api.TxnOps {
			return api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: "v/a", Session: "00000000-0000-0000-0000-000000000001"}}}
		}, false, nil},
		{"delete-cas stale", func() api.TxnOps { return api.TxnOps{kv(api.KVDeleteCAS, "v/a", "", setIdx()+99)} }, false, nil},
		{"delete-cas", func() api.TxnOps { return api.TxnOps{kv(api.KVDeleteCAS, "v/a", "", setIdx())} }, true, results()},
		{"delete", func() api.TxnOps {
			return api.TxnOps{kv(api.KVDelete, "v/b", "", 0), kv(api.KVSet, "v/t/1", "x", 0), kv(api.KVSet, "v/t/2", "y", 0)}
		}, true, results("v/t/1=", "v/t/2=")},
		{"delete-tree", func() api.TxnOps {
			return api.TxnOps{kv(api.KVDeleteTree, "v/t/", "", 0), kv(api.KVGetTree, "v/", "", 0)}
		}, true, results()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := kvState(t, a.c)
			ok, resp, _, err := a.c.Txn().Txn(tc.ops(), nil)
			if err != nil || ok != tc.ok {
				t.Fatalf("ok=%v err=%v resp=%+v, want ok=%v", ok, err, resp, tc.ok)
			}
			if !ok {
				if len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 0 {
					t.Fatalf("errors %+v", resp.Errors)
				}
				if after := kvState(t, a.c); after != before {
					t.Fatalf("failed txn changed the store")
				}
				return
			}
			tc.want(t, resp)
		})
	}
}

func testTxnBadInput(t *testing.T, a *txnAgent) {
	many := make([]string, 65)
	for i := range many {
		many[i] = `{"KV":{"Verb":"set","Key":"bad/` + strconv.Itoa(i) + `"}}`
	}
	cases := []struct {
		name, body string
		code       int
		says       string
	}{
		{"not JSON", `[{"KV":`, 400, "invalid JSON"},
		{"not an array", `{"KV":{"Verb":"set","Key":"bad/a"}}`, 400, "array"},
		{"unknown verb", `[{"KV":{"Verb":"set","Key":"bad/a"}},{"KV":{"Verb":"frob","Key":"bad/b"}}]`, 400, "Ops[1].KV.Verb"},
		{"unknown field", `[{"KV":{"Verb":"set","Key":"bad/a","Colour":"red"}}]`, 400, "[0].KV.Colour"},
		{"bad base64", `[{"KV":{"Verb":"set","Key":"bad/a","Value":"%%%"}}]`, 400, "[0].KV.Value"},
		{"missing key", `[{"KV":{"Verb":"set","Key":"bad/a"}},{"KV":{"Verb":"get"}}]`, 400, "Ops[1].KV.Key"},
		{"lock without session", `[{"KV":{"Verb":"lock","Key":"bad/a"}}]`, 400, "Ops[0].KV.Session"},
		{"node op", `[{"Node":{"Verb":"set","Node":{"Node":"n"}}}]`, 400, "Ops[0]"},
		{"65 ops", "[" + strings.Join(many, ",") + "]", 413, "too many operations (65 > 64)"},
		{"empty", ``, 400, "empty body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := kvState(t, a.c)
			code, body := a.put(t, "/v1/txn", tc.body)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %q, want %d saying %q", code, body, tc.code, tc.says)
			}
			if after := kvState(t, a.c); after != before {
				t.Fatal("refused txn changed the store")
			}
		})
	}
	if code, _ := a.put(t, "/v1/txn", "["+strings.Join(many[:64], ",")+"]"); code != 200 {
		t.Fatalf("64 ops: %d", code)
	}
	if _, err := a.c.KV().DeleteTree("bad/", nil); err != nil {
		t.Fatal(err)
	}
}

func testTxnReadOnly(t *testing.T, a *txnAgent) {
	p, _, err := a.c.KV().Get("app/k0", nil)
	if err != nil || p == nil {
		t.Fatalf("app/k0: %v", err)
	}
	for _, q := range []*api.QueryOptions{nil, {AllowStale: true}, {RequireConsistent: true}} {
		ok, resp, meta, err := a.c.Txn().Txn(api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVGet, Key: "app/k0"}},
			{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "app/k0", Index: p.ModifyIndex}},
		}, q)
		if err != nil || !ok || len(resp.Results) != 2 || meta.LastIndex < p.ModifyIndex || !meta.KnownLeader {
			t.Fatalf("read-only txn (%+v): ok=%v err=%v resp=%+v meta=%+v", q, ok, err, resp, meta)
		}
	}
	// Consistency flags are validated as on any read.
	if code, body := a.put(t, "/v1/txn?stale&consistent", `[{"KV":{"Verb":"get","Key":"app/k0"}}]`); code != 400 {
		t.Fatalf("?stale&consistent: %d %s", code, body)
	}
}

// blockingGet runs a blocking Get (or List with recurse) in the
// background; the result arrives on the channel.
type blockResult struct {
	found bool
	idx   uint64
	err   error
	dur   time.Duration
}

func blockingRead(c *api.Client, key string, recurse bool, index uint64, wait time.Duration) <-chan blockResult {
	ch := make(chan blockResult, 1)
	go func() {
		start := time.Now()
		q := &api.QueryOptions{WaitIndex: index, WaitTime: wait}
		var r blockResult
		var m *api.QueryMeta
		if recurse {
			var ps api.KVPairs
			ps, m, r.err = c.KV().List(key, q)
			r.found = len(ps) > 0
		} else {
			var p *api.KVPair
			p, m, r.err = c.KV().Get(key, q)
			r.found = p != nil
		}
		if m != nil {
			r.idx = m.LastIndex
		}
		r.dur = time.Since(start)
		ch <- r
	}()
	return ch
}

func testTombstoneBlocking(t *testing.T, a *txnAgent) {
	kv := a.c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "tomb/k", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, err := kv.Get("tomb/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A blocking Get of the key wakes on its delete with a higher index
	// (the tombstone's) and no entry.
	got := blockingRead(a.c, "tomb/k", false, meta.LastIndex, 30*time.Second)
	wm, err := kv.Delete("tomb/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.found || r.idx <= meta.LastIndex || r.dur > 20*time.Second {
		t.Fatalf("blocking Get on delete: %+v (index before %d)", r, meta.LastIndex)
	}
	if _, m, err := kv.Get("tomb/k", nil); err != nil || m.LastIndex != r.idx {
		t.Fatalf("Get of the deleted key reports %d, the blocking Get saw %d (%v)", m.LastIndex, r.idx, err)
	}
	_ = wm
	// A recurse read on tomb/ reports the delete and does not return for
	// writes elsewhere: it runs out its wait with the same index.
	_, lm, err := kv.List("tomb/", nil)
	if err != nil || lm.LastIndex != r.idx {
		t.Fatalf("list tomb/: index %d, want the tombstone's %d (%v)", lm.LastIndex, r.idx, err)
	}
	const wait = 1500 * time.Millisecond
	quiet := blockingRead(a.c, "tomb/", true, lm.LastIndex, wait)
	for i := range 5 {
		if _, err := kv.Put(&api.KVPair{Key: "other/" + strconv.Itoa(i), Value: []byte("y")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	r = <-quiet
	if r.err != nil || r.idx != lm.LastIndex || r.dur < wait {
		t.Fatalf("recurse on tomb/ returned %+v for writes under other/ (index %d, wait %v)", r, lm.LastIndex, wait)
	}
	// A write under the prefix does wake it.
	woke := blockingRead(a.c, "tomb/", true, lm.LastIndex, 30*time.Second)
	if _, err := kv.Put(&api.KVPair{Key: "tomb/z", Value: []byte("z")}, nil); err != nil {
		t.Fatal(err)
	}
	r = <-woke
	if r.err != nil || !r.found || r.idx <= lm.LastIndex || r.dur > 20*time.Second {
		t.Fatalf("recurse on tomb/ after a write under it: %+v", r)
	}
}

func testTombstonesReaped(t *testing.T, a *txnAgent) {
	kv := a.c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "reap/k", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Delete("reap/k", nil); err != nil {
		t.Fatal(err)
	}
	_, before, err := kv.Get("reap/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e2eMetric(a.http, a.p, "cairn_kv_tombstones"); err != nil || n < 1 {
		t.Fatalf("cairn_kv_tombstones = %v right after a delete (%v)", n, err)
	}
	testutil.Eventually(t, 30*time.Second, "tombstones reaped after kv.tombstone_ttl", func() error {
		n, err := e2eMetric(a.http, a.p, "cairn_kv_tombstones")
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%v tombstones left", n)
		}
		return nil
	})
	if _, after, err := kv.Get("reap/k", nil); err != nil || after.LastIndex < before.LastIndex {
		t.Fatalf("deleted key's index went back from %d to %d after the reap (%v)", before.LastIndex, after.LastIndex, err)
	}
}

// testTxnLockVerbs: lock, check-session and unlock with real sessions; a
// lock held by another session, or in its lock-delay after its holder's
// session was destroyed, fails the transaction (409, nothing applied).
func testTxnLockVerbs(t *testing.T, a *txnAgent) {
	s1, _, err := a.c.Session().Create(&api.SessionEntry{Name: "txn-1", LockDelay: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := a.c.Session().Create(&api.SessionEntry{Name: "txn-2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lockOp := func(verb api.KVOp, key, sess string) *api.TxnOp {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: key, Session: sess, Value: []byte(sess)}}
	}
	run := func(want bool, ops ...*api.TxnOp) *api.TxnResponse {
		t.Helper()
		before := kvState(t, a.c)
		ok, resp, _, err := a.c.Txn().Txn(ops, nil)
		if err != nil || ok != want {
			t.Fatalf("ok=%v err=%v resp=%+v, want ok=%v", ok, err, resp, want)
		}
		if !ok && kvState(t, a.c) != before {
			t.Fatal("failed txn changed the store")
		}
		return resp
	}
	resp := run(true, lockOp(api.KVLock, "lk/a", s1), lockOp(api.KVCheckSession, "lk/a", s1), setOp("lk/b", "x"))
	if r := resp.Results[0].KV; r.Session != s1 || r.LockIndex != 1 {
		t.Fatalf("lock result %+v", r)
	}
	if p, _, _ := a.c.KV().Get("lk/a", nil); p == nil || p.Session != s1 || string(p.Value) != s1 {
		t.Fatalf("lk/a after lock: %+v", p)
	}
	resp = run(false, setOp("lk/c", "y"), lockOp(api.KVLock, "lk/a", s2))
	if len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 || !strings.Contains(resp.Errors[0].What, "already held") {
		t.Fatalf("lock held by another: %+v", resp.Errors)
	}
	run(false, lockOp(api.KVUnlock, "lk/a", s2))
	run(true, lockOp(api.KVUnlock, "lk/a", s1), lockOp(api.KVLock, "lk/a", s2), lockOp(api.KVCheckSession, "lk/a", s2))
	// Destroying s2 releases lk/a (s2's LockDelay is Consul's 15 s): a
	// lock in a transaction is refused by the leader until it ends.
	if _, err := a.c.Session().Destroy(s2, nil); err != nil {
		t.Fatal(err)
	}
	resp = run(false, lockOp(api.KVLock, "lk/a", s1))
	if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].What, "lock delay") {
		t.Fatalf("lock in lock-delay: %+v", resp.Errors)
	}
	if _, err := a.c.Session().Destroy(s1, nil); err != nil {
		t.Fatal(err)
	}
}
