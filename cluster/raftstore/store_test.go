package raftstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func openMem(t testing.TB) *Store {
	t.Helper()
	s, err := Open("raft", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mkLog(i uint64) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       i/10 + 1,
		Type:       raft.LogCommand,
		Data:       []byte("data-" + string(rune('a'+i%26))),
		Extensions: []byte{byte(i)},
		AppendedAt: time.Unix(1700000000, int64(i)).UTC(),
	}
}

func mkLogs(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, mkLog(i))
	}
	return out
}

func bounds(t *testing.T, s *Store) (uint64, uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

func equalLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func TestEmptyStore(t *testing.T) {
	s := openMem(t)
	if f, l := bounds(t, s); f != 0 || l != 0 {
		t.Fatalf("empty bounds = %d,%d, want 0,0", f, l)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(1) on empty = %v, want raft.ErrLogNotFound", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		log  raft.Log
	}{
		{"zero", raft.Log{Index: 1}},
		{"full", *mkLog(42)},
		{"config type", raft.Log{Index: 7, Term: 1 << 40, Type: raft.LogConfiguration, Data: bytes.Repeat([]byte{9}, 1000)}},
		{"ext only", raft.Log{Index: 3, Term: 2, Type: raft.LogNoop, Extensions: []byte("x")}},
		{"negative time", raft.Log{Index: 4, AppendedAt: time.Unix(-5, 0)}},
		{"max", raft.Log{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: raft.LogBarrier}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := appendLog(nil, &tc.log)
			var got raft.Log
			if err := decodeLog(tc.log.Index, buf, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !equalLog(&got, &tc.log) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, tc.log)
			}
			// Mutating the source buffer must not change the decoded entry.
			for i := range buf {
				buf[i] = 0xff
			}
			if !equalLog(&got, &tc.log) {
				t.Fatal("decoded log aliases the source buffer")
			}
			// Every strict prefix is rejected, never a panic.
			full := appendLog(nil, &tc.log)
			for n := 0; n < len(full); n++ {
				if err := decodeLog(1, full[:n], &got); err == nil {
					t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(full))
				}
			}
		})
	}
}

func TestStoreAndGet(t *testing.T) {
	s := openMem(t)
	if err := s.StoreLog(mkLog(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(2, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("StoreLogs(nil) = %v", err)
	}
	if f, l := bounds(t, s); f != 1 || l != 10 {
		t.Fatalf("bounds = %d,%d, want 1,10", f, l)
	}
	for i := uint64(1); i <= 10; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if want := mkLog(i); !equalLog(&got, want) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, want)
		}
	}
	for _, missing := range []uint64{0, 11, 1 << 63} {
		var got raft.Log
		if err := s.GetLog(missing, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound", missing, err)
		}
	}
	// Overwrite (raft does this when a follower's log conflicts with the leader's).
	repl := mkLog(5)
	repl.Term, repl.Data = 99, []byte("new")
	if err := s.StoreLog(repl); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(5, &got); err != nil || got.Term != 99 || string(got.Data) != "new" {
		t.Fatalf("overwritten GetLog(5) = %+v, %v", got, err)
	}
}

func TestDeleteRange(t *testing.T) {
	cases := []struct {
		name             string
		del              [2]uint64
		wantFirst, wantL uint64
		present, absent  []uint64
	}{
		{"prefix (compaction)", [2]uint64{1, 5}, 6, 10, []uint64{6, 10}, []uint64{1, 5}},
		{"suffix (conflict)", [2]uint64{7, 10}, 1, 6, []uint64{1, 6}, []uint64{7, 10}},
		{"all", [2]uint64{1, 10}, 0, 0, nil, []uint64{1, 10}},
		{"beyond both ends", [2]uint64{0, 1<<64 - 1}, 0, 0, nil, []uint64{1, 10}},
		{"middle", [2]uint64{4, 6}, 1, 10, []uint64{3, 7}, []uint64{4, 5, 6}},
		{"outside", [2]uint64{20, 30}, 1, 10, []uint64{1, 10}, nil},
		{"inverted is no-op", [2]uint64{5, 4}, 1, 10, []uint64{4, 5}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openMem(t)
			if err := s.StoreLogs(mkLogs(1, 10)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(tc.del[0], tc.del[1]); err != nil {
				t.Fatal(err)
			}
			if f, l := bounds(t, s); f != tc.wantFirst || l != tc.wantL {
				t.Fatalf("bounds = %d,%d, want %d,%d", f, l, tc.wantFirst, tc.wantL)
			}
			var got raft.Log
			for _, i := range tc.present {
				if err := s.GetLog(i, &got); err != nil {
					t.Errorf("GetLog(%d) after delete: %v", i, err)
				}
			}
			for _, i := range tc.absent {
				if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
					t.Errorf("GetLog(%d) after delete = %v, want ErrLogNotFound", i, err)
				}
			}
		})
	}
}

func TestStableStore(t *testing.T) {
	s := openMem(t)
	if v, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" || v != nil {
		t.Fatalf("Get(missing) = %q, %v; want nil, \"not found\"", v, err)
	}
	if !errors.Is(func() error { _, err := s.Get([]byte("x")); return err }(), ErrKeyNotFound) {
		t.Fatal("Get(missing) is not ErrKeyNotFound")
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); v != 0 || err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, \"not found\"", v, err)
	}

	cases := []struct{ key, val string }{
		{"LastVoteCand", "node-1"},
		{"empty-value", ""},
		{"binary\x00key", "\x00\xff"},
	}
	for _, c := range cases {
		if err := s.Set([]byte(c.key), []byte(c.val)); err != nil {
			t.Fatalf("Set(%q): %v", c.key, err)
		}
	}
	for _, c := range cases {
		got, err := s.Get([]byte(c.key))
		if err != nil || string(got) != c.val {
			t.Fatalf("Get(%q) = %q, %v; want %q", c.key, got, err, c.val)
		}
	}
	if got, err := s.Get([]byte("empty-value")); err != nil || got == nil {
		t.Fatalf("Get(empty-value) = %#v, %v; want empty non-nil slice", got, err)
	}
	// Stable keys live in their own prefix: a key that looks like a log key
	// must not show up as a log entry or move the bounds.
	if err := s.Set([]byte("l\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if f, l := bounds(t, s); f != 0 || l != 0 {
		t.Fatalf("stable write moved log bounds to %d,%d", f, l)
	}

	for _, v := range []uint64{0, 1, 1<<64 - 1} {
		if err := s.SetUint64([]byte("CurrentTerm"), v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetUint64([]byte("CurrentTerm")); err != nil || got != v {
			t.Fatalf("GetUint64 = %d, %v; want %d", got, err, v)
		}
	}
	if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil {
		t.Fatal("GetUint64 of a 6-byte value succeeded")
	}
}

// TestRaftAcceptsNotFound checks the contract that matters: raft's own
// HasExistingState must treat a fresh store as empty, not as an error.
func TestRaftAcceptsNotFound(t *testing.T) {
	s := openMem(t)
	ok, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore())
	if err != nil || ok {
		t.Fatalf("HasExistingState(fresh) = %v, %v; want false, nil", ok, err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	ok, err = raft.HasExistingState(s, s, raft.NewInmemSnapshotStore())
	if err != nil || !ok {
		t.Fatalf("HasExistingState(term 3) = %v, %v; want true, nil", ok, err)
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(1, 20)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if f, l := bounds(t, s); f != 5 || l != 20 {
		t.Fatalf("bounds after reopen = %d,%d, want 5,20", f, l)
	}
	var got raft.Log
	if err := s.GetLog(20, &got); err != nil || !equalLog(&got, mkLog(20)) {
		t.Fatalf("GetLog(20) after reopen = %+v, %v", got, err)
	}
	if err := s.GetLog(4, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("deleted GetLog(4) after reopen = %v", err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("CurrentTerm after reopen = %d, %v", v, err)
	}
}

func TestMemFSIsolated(t *testing.T) {
	// Two stores on different in-memory filesystems never see each other,
	// even with the same directory name: what --dev relies on.
	a, b := openMem(t), openMem(t)
	if err := a.StoreLogs(mkLogs(1, 3)); err != nil {
		t.Fatal(err)
	}
	if _, l := bounds(t, b); l != 0 {
		t.Fatalf("second mem store sees last index %d", l)
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"dir is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "raft.db")
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"garbage CURRENT", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "raft")
			s, err := Open(d, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLog(mkLog(1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Pebble v2 may use a marker file instead of CURRENT; break both.
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				n := e.Name()
				if n == "CURRENT" || strings.HasPrefix(n, "MANIFEST") || strings.HasPrefix(n, "marker.manifest") {
					if err := os.WriteFile(filepath.Join(d, n), []byte("\x00garbage\xff"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			return d
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			s, err := Open(dir, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "raftstore: open "+dir) {
				t.Fatalf("error %q does not name the path %s", err, dir)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestSnapshotStores(t *testing.T) {
	dir := t.TempDir()
	ss, err := NewSnapshotStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshots")); err != nil {
		t.Fatalf("snapshot dir not created: %v", err)
	}
	list, err := ss.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("List on fresh store = %v, %v", list, err)
	}
	if list, err := NewMemSnapshotStore().List(); err != nil || len(list) != 0 {
		t.Fatalf("mem List = %v, %v", list, err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSnapshotStore(file, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("snapshot store under a file: err = %v, want error naming %s", err, file)
	}
}

func TestConcurrentWritersKeepBounds(t *testing.T) {
	s := openMem(t)
	if err := s.StoreLogs(mkLogs(1, 100)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		var err error
		for i := uint64(101); i <= 300 && err == nil; i += 10 {
			err = s.StoreLogs(mkLogs(i, i+9))
		}
		done <- err
	}()
	go func() {
		var err error
		for i := uint64(1); i <= 90 && err == nil; i += 10 {
			err = s.DeleteRange(i, i+9)
		}
		done <- err
	}()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if f, l := bounds(t, s); f != 91 || l != 300 {
		t.Fatalf("bounds = %d,%d, want 91,300", f, l)
	}
}

func BenchmarkStoreLogs(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 64
	data := bytes.Repeat([]byte{'x'}, 256)
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
	}
	b.SetBytes(batch * 256)
	b.ReportAllocs()
	next := uint64(1)
	for b.Loop() {
		for _, l := range logs {
			l.Index = next
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
}
