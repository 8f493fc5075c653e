package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

func txnOp(verb structs.KVOp, key, value string, index uint64) structs.TxnOp {
	return structs.TxnOp{KV: &structs.TxnKVOp{Verb: verb, DirEnt: structs.DirEntry{Key: key, Value: []byte(value), ModifyIndex: index}}}
}

// txnSeed is the state every case starts from: a=1 at 1, d/x at 2, d/y at
// 3, and a tombstone for gone at 4.
func txnSeed(t *testing.T) *Store {
	t.Helper()
	s := New()
	_ = s.KVSSet(1, &structs.DirEntry{Key: "a", Value: []byte("1")})
	_ = s.KVSSet(2, &structs.DirEntry{Key: "d/x", Value: []byte("x")})
	_ = s.KVSSet(3, &structs.DirEntry{Key: "d/y", Value: []byte("y")})
	_ = s.KVSSet(4, &structs.DirEntry{Key: "gone"})
	_ = s.KVSDelete(4, "gone")
	return s
}

// fmtResults renders results as "key=value@create/modify" (value "-" when
// left out, as Consul leaves it out of every result but get's).
func fmtResults(rs []structs.TxnResult) string {
	var parts []string
	for _, r := range rs {
		v := "-"
		if r.KV.Value != nil {
			v = string(r.KV.Value)
		}
		parts = append(parts, fmt.Sprintf("%s=%s@%d/%d", r.KV.Key, v, r.KV.CreateIndex, r.KV.ModifyIndex))
	}
	return strings.Join(parts, " ")
}

// TestTxnVerbs: every verb, alone and in combination, at index 10; a
// failure anywhere leaves the Store exactly as it was (dump compared).
func TestTxnVerbs(t *testing.T) {
	cases := []struct {
		name    string
		ops     []structs.TxnOp
		results string // on success
		errs    string // "i:what;..." on failure
		after   []string
	}{
		{name: "set new and existing", ops: []structs.TxnOp{txnOp(structs.KVSet, "b", "2", 0), txnOp(structs.KVSet, "a", "9", 0)},
			results: "b=-@10/10 a=-@1/10"},
		{name: "cas create", ops: []structs.TxnOp{txnOp(structs.KVCAS, "b", "2", 0)}, results: "b=-@10/10"},
		{name: "cas stale", ops: []structs.TxnOp{txnOp(structs.KVCAS, "a", "2", 7)},
			errs: `0:failed to set key "a", index is stale`},
		{name: "cas current", ops: []structs.TxnOp{txnOp(structs.KVCAS, "a", "2", 1)}, results: "a=-@1/10"},
		{name: "get", ops: []structs.TxnOp{txnOp(structs.KVGet, "a", "", 0)}, results: "a=1@1/1"},
		{name: "get missing", ops: []structs.TxnOp{txnOp(structs.KVGet, "nope", "", 0)},
			errs: `0:key "nope" doesn't exist`},
		{name: "get-tree", ops: []structs.TxnOp{txnOp(structs.KVGetTree, "d/", "", 0)}, results: "d/x=x@2/2 d/y=y@3/3"},
		{name: "get-tree sees earlier ops", ops: []structs.TxnOp{txnOp(structs.KVSet, "d/z", "z", 0), txnOp(structs.KVDelete, "d/x", "", 0), txnOp(structs.KVGetTree, "d/", "", 0)},
			results: "d/z=-@10/10 d/y=y@3/3 d/z=z@10/10"},
		{name: "check-index ok", ops: []structs.TxnOp{txnOp(structs.KVCheckIndex, "d/x", "", 2)}, results: "d/x=-@2/2"},
		{name: "check-index stale", ops: []structs.TxnOp{txnOp(structs.KVCheckIndex, "d/x", "", 3)},
			errs: `0:failed index check for key "d/x", current modify index 2 != 3`},
		{name: "check-index missing", ops: []structs.TxnOp{txnOp(structs.KVCheckIndex, "nope", "", 3)},
			errs: `0:failed to check index, key "nope" doesn't exist`},
		{name: "check-not-exists ok", ops: []structs.TxnOp{txnOp(structs.KVCheckNotExists, "gone", "", 0)}},
		{name: "check-not-exists fails", ops: []structs.TxnOp{txnOp(structs.KVCheckNotExists, "a", "", 0)},
			errs: `0:key "a" exists`},
		{name: "check-session no holder", ops: []structs.TxnOp{{KV: &structs.TxnKVOp{Verb: structs.KVCheckSession, DirEnt: structs.DirEntry{Key: "a", Session: "s1"}}}},
			errs: `0:failed session check for key "a", current session "" != "s1"`},
		{name: "delete", ops: []structs.TxnOp{txnOp(structs.KVDelete, "a", "", 0), txnOp(structs.KVDelete, "nope", "", 0)},
			after: []string{"tombstone a idx=10"}},
		{name: "delete-cas ok", ops: []structs.TxnOp{txnOp(structs.KVDeleteCAS, "a", "", 1)}},
		{name: "delete-cas stale", ops: []structs.TxnOp{txnOp(structs.KVDeleteCAS, "a", "", 5)},
			errs: `0:failed to delete key "a", index is stale`},
		{name: "delete-tree", ops: []structs.TxnOp{txnOp(structs.KVDeleteTree, "d/", "", 0)},
			after: []string{"tombstone d/x idx=10", "tombstone d/y idx=10"}},
		{name: "set over tombstone", ops: []structs.TxnOp{txnOp(structs.KVSet, "gone", "back", 0)}, results: "gone=-@10/10"},
		{name: "unknown verb", ops: []structs.TxnOp{txnOp("frob", "a", "", 0)}, errs: `0:unknown KV verb "frob"`},
		// All or nothing: every failure is reported; the writes before
		// and after the failures are undone, tombstones included.
		{name: "failures undo everything", ops: []structs.TxnOp{
			txnOp(structs.KVSet, "a", "changed", 0),
			txnOp(structs.KVDeleteTree, "d/", "", 0),
			txnOp(structs.KVCheckIndex, "a", "", 1),
			txnOp(structs.KVSet, "gone", "back", 0),
			txnOp(structs.KVSet, "new", "n", 0),
			txnOp(structs.KVCheckNotExists, "new", "", 0),
			txnOp(structs.KVDelete, "new", "", 0),
		}, errs: `2:failed index check for key "a", current modify index 10 != 1;5:key "new" exists`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := txnSeed(t)
			before := dump(s)
			w := s.WatchKey(KVPrefixKey(""))
			results, errs := s.Txn(10, tc.ops)
			if tc.errs != "" {
				var got []string
				for _, e := range errs {
					got = append(got, fmt.Sprintf("%d:%s", e.OpIndex, e.What))
				}
				if g := strings.Join(got, ";"); g != tc.errs || results != nil {
					t.Fatalf("errors %q results %v, want errors %q", g, results, tc.errs)
				}
				if after := dump(s); after != before {
					t.Fatalf("failed txn changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				select {
				case <-w:
					t.Fatal("failed txn woke a watcher")
				default:
				}
				return
			}
			if len(errs) != 0 {
				t.Fatalf("unexpected errors %+v", errs)
			}
			if got := fmtResults(results); got != tc.results {
				t.Fatalf("results %q, want %q", got, tc.results)
			}
			for _, line := range tc.after {
				if !strings.Contains(dump(s), line+"\n") {
					t.Errorf("dump lacks %q:\n%s", line, dump(s))
				}
			}
		})
	}
}

// TestTxnIndexes: a transaction moves the indexes of what it wrote, at its
// one Raft index, and wakes only their watchers; one that only reads or
// changes nothing moves nothing.
func TestTxnIndexes(t *testing.T) {
	s := txnSeed(t)
	wd := s.WatchKey(KVPrefixKey("d/"))
	wa := s.WatchKey(KVPrefixKey("a"))
	if _, errs := s.Txn(10, []structs.TxnOp{txnOp(structs.KVSet, "d/z", "z", 0), txnOp(structs.KVDelete, "d/x", "", 0)}); errs != nil {
		t.Fatal(errs)
	}
	select {
	case <-wd:
	default:
		t.Fatal("d/ watcher not woken")
	}
	select {
	case <-wa:
		t.Fatal("a watcher woken by writes under d/")
	default:
	}
	if idx, _ := s.KVSList("d/"); idx != 10 {
		t.Fatalf("d/ at %d, want 10", idx)
	}
	if idx, _ := s.KVSGet("d/x"); idx != 10 {
		t.Fatalf("deleted d/x at %d, want its tombstone's 10", idx)
	}
	if _, errs := s.Txn(11, []structs.TxnOp{txnOp(structs.KVDelete, "nope", "", 0), txnOp(structs.KVGet, "a", "", 0)}); errs != nil {
		t.Fatal(errs)
	}
	if got := s.TableIndex(TableKVS); got != 10 {
		t.Fatalf("a txn that changed nothing moved the kvs index to %d", got)
	}
	idx, res, errs := s.TxnRead([]structs.TxnOp{txnOp(structs.KVGet, "a", "", 0), txnOp(structs.KVCheckIndex, "d/y", "", 3)})
	if errs != nil || idx != 10 || fmtResults(res) != "a=1@1/1 d/y=-@3/3" {
		t.Fatalf("read txn: idx %d results %q errs %v", idx, fmtResults(res), errs)
	}
	if _, _, errs := s.TxnRead([]structs.TxnOp{txnOp(structs.KVSet, "a", "x", 0)}); len(errs) != 1 {
		t.Fatalf("a write in a read txn: %v", errs)
	}
}

// lockIndexCopy copies the session → held keys index.
func lockIndexCopy(s *Store) map[string][]string {
	out := map[string][]string{}
	for sess, keys := range s.sessionLocks {
		for k := range keys {
			out[sess] = append(out[sess], k)
		}
		slices.Sort(out[sess])
	}
	return out
}

// TestTxnLockVerbs: lock, unlock and check-session on the sessions' lock
// functions, and a failed transaction undoing locks and releases with the
// held-lock index (so invalidating a session still releases what it held).
func TestTxnLockVerbs(t *testing.T) {
	seed := func(t *testing.T) *Store {
		s, _ := sessionStore(t)
		mustCreate(t, s, 2, &structs.Session{ID: "s1", Node: "a"})
		mustCreate(t, s, 2, &structs.Session{ID: "s2", Node: "a"})
		if !lock(t, s, 3, "l", "s1", "held") {
			t.Fatal("seed lock failed")
		}
		return s
	}
	op := func(verb structs.KVOp, key, session string) structs.TxnOp {
		return structs.TxnOp{KV: &structs.TxnKVOp{Verb: verb, DirEnt: structs.DirEntry{Key: key, Session: session, Value: []byte("v")}}}
	}
	cases := []struct {
		name string
		ops  []structs.TxnOp
		want string // results as key@session/lockindex, or the errors
	}{
		{"lock new key", []structs.TxnOp{op(structs.KVLock, "m", "s1")}, "m@s1/1"},
		{"re-lock by holder", []structs.TxnOp{op(structs.KVLock, "l", "s1")}, "l@s1/1"},
		{"lock held by another", []structs.TxnOp{op(structs.KVLock, "l", "s2")}, `0:failed to lock key "l", lock is already held`},
		{"lock by unknown session", []structs.TxnOp{op(structs.KVLock, "m", "nope")}, `0:invalid session "nope"`},
		{"unlock then lock by another", []structs.TxnOp{op(structs.KVUnlock, "l", "s1"), op(structs.KVLock, "l", "s2")}, "l@/1 l@s2/2"},
		{"unlock by another", []structs.TxnOp{op(structs.KVUnlock, "l", "s2")}, `0:failed to unlock key "l", lock isn't held, or is held by another session`},
		{"check-session", []structs.TxnOp{op(structs.KVCheckSession, "l", "s1")}, "l@s1/1"},
		{"check-session other", []structs.TxnOp{op(structs.KVCheckSession, "l", "s2")}, `0:failed session check for key "l", current session "s1" != "s2"`},
		{"check-session missing", []structs.TxnOp{op(structs.KVCheckSession, "x", "s2")}, `0:failed to check session, key "x" doesn't exist`},
		{"failure undoes locks", []structs.TxnOp{
			op(structs.KVUnlock, "l", "s1"), op(structs.KVLock, "l", "s2"), op(structs.KVLock, "m", "s2"),
			op(structs.KVDelete, "l", ""), op(structs.KVCheckSession, "m", "s1"),
		}, `4:failed session check for key "m", current session "s2" != "s1"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := seed(t)
			before, locks := dump(s), lockIndexCopy(s)
			results, errs := s.Txn(10, tc.ops)
			var got []string
			for _, r := range results {
				got = append(got, fmt.Sprintf("%s@%s/%d", r.KV.Key, r.KV.Session, r.KV.LockIndex))
			}
			for _, e := range errs {
				got = append(got, fmt.Sprintf("%d:%s", e.OpIndex, e.What))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("got %q, want %q", g, tc.want)
			}
			if len(errs) == 0 {
				return
			}
			if after := dump(s); after != before {
				t.Fatalf("failed txn changed the store:\n%s\nvs\n%s", before, after)
			}
			if after := lockIndexCopy(s); !reflect.DeepEqual(after, locks) {
				t.Fatalf("held-lock index %v after rollback, want %v", after, locks)
			}
			// s1 still holds l for real: destroying it releases l.
			if err := s.SessionDestroy(11, "s1"); err != nil {
				t.Fatal(err)
			}
			if _, e := s.KVSGet("l"); e == nil || e.Session != "" {
				t.Fatalf("l after destroying s1: %+v", e)
			}
		})
	}
}
