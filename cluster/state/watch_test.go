package state

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestBlockKeyWakesOnlyForItsKey blocks on one key, makes writes to other
// keys, then one to the key. No other write may close the key's watch
// channel, and the blocked query returns the key's write index having run
// twice: before waiting and after the key's write.
func TestBlockKeyWakesOnlyForItsKey(t *testing.T) {
	setup, cases := blockKeyCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			var idx uint64
			for _, w := range setup {
				idx++
				if err := w(s, idx); err != nil {
					t.Fatal(err)
				}
			}
			min := tc.read(s)
			var runs atomic.Int32
			started := make(chan struct{})
			done := make(chan uint64, 1)
			go func() {
				got, err := s.BlockKey(context.Background(), min, time.Minute, tc.key, func() (uint64, error) {
					idx := tc.read(s)
					// The watch is armed before run: writes after this
					// signal can only reach a waiting Block.
					if runs.Add(1) == 1 {
						close(started)
					}
					return idx, nil
				})
				if err != nil {
					t.Error(err)
				}
				done <- got
			}()
			<-started
			for i, w := range tc.noise {
				// The channel Block waits on is the key's shared one;
				// writes notify synchronously, so it is checked at once.
				ch := s.WatchKey(tc.key)
				idx++
				if err := w(s, idx); err != nil {
					t.Fatal(err)
				}
				select {
				case <-ch:
					t.Errorf("noise write %d (index %d) woke %s", i, idx, tc.key)
				default:
				}
			}
			idx++
			if err := tc.hit(s, idx); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-done:
				if got != idx {
					t.Errorf("returned index %d, want %d (the key's write)", got, idx)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the key's own write did not end the block")
			}
			if n := runs.Load(); n != 2 {
				t.Errorf("query ran %d times, want 2: it woke for writes to other keys", n)
			}
		})
	}
}

// writeFn is one write of a watch test at the given index.
type writeFn func(s *Store, idx uint64) error

// blockKeyCase blocks on key with read, makes the noise writes (which
// must not wake it), then hit (which must).
type blockKeyCase struct {
	name  string
	key   Key
	read  func(s *Store) uint64
	noise []writeFn
	hit   writeFn
}

// regW registers svc (if any) with check (if any) on node.
func regW(node, addr, svc, check, status string) writeFn {
	return func(s *Store, idx uint64) error {
		req := &structs.RegisterRequest{Node: node, Address: addr}
		if svc != "" {
			req.Service = &structs.NodeService{Service: svc, ID: svc}
		}
		if check != "" {
			c := &structs.HealthCheck{CheckID: check, Status: status}
			if svc != "" {
				c.ServiceID = svc
			}
			req.Checks = []*structs.HealthCheck{c}
		}
		return s.EnsureRegistration(idx, req)
	}
}

func kvSetW(key string) writeFn {
	return func(s *Store, idx uint64) error {
		return s.KVSSet(idx, &structs.DirEntry{Key: key, Value: []byte("v")})
	}
}

func blockKeyCases() ([]writeFn, []blockKeyCase) {
	setup := []writeFn{
		regW("n1", "10.0.0.1", "a", "a-check", structs.HealthPassing),
		regW("n2", "10.0.0.2", "b", "b-check", structs.HealthPassing),
		regW("n3", "10.0.0.3", "", "", ""),
		kvSetW("app/x"),
		kvSetW("other/y"),
	}
	return setup, []blockKeyCase{
		{
			name: "health of a", key: ServiceKey("a"),
			read: func(s *Store) uint64 { idx, _ := s.CheckServiceNodes("a", "", false); return idx },
			noise: []writeFn{
				regW("n2", "10.0.0.2", "b", "b-check", structs.HealthCritical), // b's check
				regW("n4", "10.0.0.4", "b2", "", ""),                           // another service registered
				func(s *Store, idx uint64) error {
					return s.Deregister(idx, &structs.DeregisterRequest{Node: "n4", ServiceID: "b2"})
				},
				regW("n3", "10.0.0.3", "", "disk", structs.HealthWarning), // node check on a node without a
				regW("n2", "10.0.0.22", "", "", ""),                       // row of a node without a
				kvSetW("app/z"),
				regW("n1", "10.0.0.1", "a", "a-check", structs.HealthPassing), // unchanged
			},
			hit: regW("n1", "10.0.0.1", "a", "a-check", structs.HealthCritical),
		},
		{
			name: "catalog of a, node check", key: ServiceKey("a"),
			read: func(s *Store) uint64 { idx, _ := s.ServiceNodes("a", ""); return idx },
			noise: []writeFn{
				regW("n2", "10.0.0.2", "b", "b-check", structs.HealthWarning),
			},
			hit: regW("n1", "10.0.0.1", "", "serfHealth", structs.HealthCritical),
		},
		{
			name: "a deregistered", key: ServiceKey("a"),
			read: func(s *Store) uint64 { idx, _ := s.CheckServiceNodes("a", "", false); return idx },
			noise: []writeFn{
				func(s *Store, idx uint64) error {
					return s.Deregister(idx, &structs.DeregisterRequest{Node: "n2", ServiceID: "b"})
				},
			},
			hit: func(s *Store, idx uint64) error {
				return s.Deregister(idx, &structs.DeregisterRequest{Node: "n1", ServiceID: "a"})
			},
		},
		{
			name: "node n1", key: NodeKey("n1"),
			read: func(s *Store) uint64 { idx, _ := s.NodeServices("n1"); return idx },
			noise: []writeFn{
				regW("n2", "10.0.0.2", "b", "b-check", structs.HealthCritical),
			},
			hit: regW("n1", "10.0.0.9", "", "", ""),
		},
		{
			name: "kv prefix app/", key: KVPrefixKey("app/"),
			read: func(s *Store) uint64 { idx, _ := s.KVSList("app/"); return idx },
			noise: []writeFn{
				kvSetW("other/z"),
				func(s *Store, idx uint64) error { return s.KVSDelete(idx, "other/y") },
				kvSetW("ap"),
				regW("n2", "10.0.0.2", "b", "b-check", structs.HealthCritical),
			},
			hit: func(s *Store, idx uint64) error { return s.KVSDelete(idx, "app/x") },
		},
	}
}

// TestUnwatchedWritesLeaveNoWatchers: fired channels are dropped, so the
// watch maps hold only what is being watched.
func TestUnwatchedWritesLeaveNoWatchers(t *testing.T) {
	s := New()
	ch := s.WatchKey(ServiceKey("web"))
	kv := s.WatchKey(KVPrefixKey("a/"))
	mustRegister(t, s, 1, webReq("n1", "10.0.0.1", 80, structs.HealthPassing))
	_ = s.KVSSet(2, &structs.DirEntry{Key: "a/b"})
	for _, c := range []<-chan struct{}{ch, kv} {
		select {
		case <-c:
		default:
			t.Fatal("watch not fired")
		}
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for k, m := range s.keyWatches {
		if len(m) != 0 {
			t.Errorf("kind %d: %d watch channels left after firing", k, len(m))
		}
	}
}

// TestTombstoneReap: deletes leave one tombstone each, re-creating a key
// drops its tombstone, and a reap removes exactly the tombstones up to its
// bound without any read's index going back or any KV watcher waking.
func TestTombstoneReap(t *testing.T) {
	s := New()
	_ = s.KVSSet(1, &structs.DirEntry{Key: "keep/x"})
	idx := uint64(1)
	var keys []string
	for i := range 100 {
		key := "jobs/" + string(rune('a'+i%26)) + "/" + time.Duration(i).String() + "/lock"
		keys = append(keys, key)
		idx++
		_ = s.KVSSet(idx, &structs.DirEntry{Key: key})
		idx++
		_ = s.KVSDelete(idx, key)
		if got, _ := s.KVSList("jobs/"); got != idx {
			t.Fatalf("after deleting %s at %d, jobs/ reports %d", key, idx, got)
		}
		if got, _ := s.KVSGet(key); got != idx {
			t.Fatalf("get of deleted %s reports %d, want its tombstone's %d", key, got, idx)
		}
	}
	if got, _ := s.KVSList("keep/"); got != 1 {
		t.Fatalf("keep/ saw deletes elsewhere: %d", got)
	}
	if n := s.Tombstones(); n != 100 {
		t.Fatalf("%d tombstones, want 100", n)
	}
	// Re-creating a key drops its tombstone.
	idx++
	_ = s.KVSSet(idx, &structs.DirEntry{Key: keys[0]})
	if n := s.Tombstones(); n != 99 {
		t.Fatalf("%d tombstones after re-creating %s, want 99", n, keys[0])
	}
	bound := uint64(101) // the deletes at 5, 7, ..., 101 go; later ones stay
	before := map[string]uint64{}
	for _, p := range []string{"", "jobs/", "jobs/b/", keys[50], keys[99], "keep/"} {
		before[p], _ = s.KVSList(p)
	}
	getBefore, _ := s.KVSGet(keys[10])
	watch := s.WatchKey(KVPrefixKey("jobs/"))
	idx++
	if n := s.ReapTombstones(idx, bound); n != 49 {
		t.Fatalf("reaped %d tombstones, want 49", n)
	}
	select {
	case <-watch:
		t.Fatal("a reap woke a KV prefix watcher")
	default:
	}
	if n := s.Tombstones(); n != 50 {
		t.Fatalf("%d tombstones left, want 50", n)
	}
	for p, was := range before {
		if got, _ := s.KVSList(p); got < was {
			t.Errorf("prefix %q went back from %d to %d after the reap", p, was, got)
		}
	}
	if got, _ := s.KVSGet(keys[10]); got < getBefore {
		t.Errorf("get of reaped %s went back from %d to %d", keys[10], getBefore, got)
	}
	if got := s.TableIndex(TableKVS); got != idx {
		t.Errorf("kvs table index %d after the reap, want %d", got, idx)
	}
	// A reap with nothing to remove changes nothing.
	if n := s.ReapTombstones(idx+1, bound); n != 0 || s.TableIndex(TableKVS) != idx {
		t.Fatalf("empty reap removed %d, moved the table to %d", n, s.TableIndex(TableKVS))
	}
}

// TestRestoreFloorsPerKeyIndexes: per-key indexes are not in snapshots, so
// a restored Store reports at least the snapshot's index for every key; a
// watcher holding an index from before (say, of a since-deleted key) can
// never see the index go back and miss the change.
func TestRestoreFloorsPerKeyIndexes(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, webReq("n1", "10.0.0.1", 80, structs.HealthPassing))
	_ = s.KVSSet(2, &structs.DirEntry{Key: "app/x"})
	_ = s.KVSSet(3, &structs.DirEntry{Key: "app/y"})
	_ = s.KVSDelete(4, "app/y")
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for name, idx := range map[string]uint64{
		"service web":  first(r.CheckServiceNodes("web", "", false)),
		"service gone": first(r.ServiceNodes("nope", "")),
		"node n1":      first(r.NodeServices("n1")),
		"kv app/":      first(r.KVSList("app/")),
		"kv app/y":     first(r.KVSGet("app/y")),
	} {
		if idx != 4 {
			t.Errorf("%s: index %d after restore, want the snapshot's 4", name, idx)
		}
	}
	_ = r.KVSSet(5, &structs.DirEntry{Key: "other/z"})
	if idx, _ := r.KVSList("app/"); idx != 4 {
		t.Errorf("app/ moved to %d on a write to other/", idx)
	}
}
