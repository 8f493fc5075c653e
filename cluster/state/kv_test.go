package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

func TestKVS(t *testing.T) {
	s := New()
	if err := s.KVSSet(1, &structs.DirEntry{}); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("empty key: %v", err)
	}
	in := &structs.DirEntry{Key: "a", Value: []byte("1"), Flags: 9, CreateIndex: 77, ModifyIndex: 77}
	if err := s.KVSSet(2, in); err != nil {
		t.Fatal(err)
	}
	if err := s.KVSSet(3, &structs.DirEntry{Key: "a", Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	idx, e := s.KVSGet("a")
	if idx != 3 || e.CreateIndex != 2 || e.ModifyIndex != 3 || string(e.Value) != "2" || e.Flags != 0 {
		t.Fatalf("KVSGet %d %+v", idx, e)
	}
	if in.CreateIndex != 77 {
		t.Fatal("KVSSet modified its argument")
	}

	// CAS both branches, for create and for update.
	for _, tc := range []struct {
		key  string
		mi   uint64
		want bool
	}{{"a", 0, false}, {"b", 0, true}, {"a", 2, false}, {"a", 3, true}, {"zz", 5, false}} {
		ok, err := s.KVSSetCAS(10, &structs.DirEntry{Key: tc.key, ModifyIndex: tc.mi})
		if err != nil || ok != tc.want {
			t.Errorf("CAS %s@%d = %v %v, want %v", tc.key, tc.mi, ok, err, tc.want)
		}
	}
	ok, _ := s.KVSDeleteCAS(11, 3, "a")
	if ok {
		t.Error("delete-cas with stale index succeeded")
	}
	ok, _ = s.KVSDeleteCAS(11, 10, "a")
	if _, e := s.KVSGet("a"); !ok || e != nil {
		t.Errorf("delete-cas with current index: %v, entry %+v", ok, e)
	}

	// Deletes move the table index so a blocked list wakes.
	if err := s.KVSDelete(12, "b"); err != nil || s.TableIndex(TableKVS) != 12 {
		t.Fatalf("delete: %v index %d", err, s.TableIndex(TableKVS))
	}
	for i, k := range []string{"p/1", "p/2", "p/x/3", "q"} {
		if err := s.KVSSet(uint64(20+i), &structs.DirEntry{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	_, l := s.KVSList("p/")
	if names(l, func(e *structs.DirEntry) string { return e.Key }) != "p/1,p/2,p/x/3" {
		t.Fatalf("KVSList %v", l)
	}
	if err := s.KVSDeleteTree(30, "p/"); err != nil {
		t.Fatal(err)
	}
	idx, keys := s.KVSListKeys("", "")
	if idx != 30 || !slices.Equal(keys, []string{"q"}) {
		t.Fatalf("after delete-tree: %d %v", idx, keys)
	}
}

func TestSortedKeysMatchesSortedSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sk sortedKeys
	ref := map[string]bool{}
	for i := 0; i < 20000; i++ {
		k := fmt.Sprintf("k/%d/%d", rng.IntN(40), rng.IntN(200))
		if rng.IntN(3) == 0 {
			if sk.remove(k) != ref[k] {
				t.Fatalf("remove(%s) disagrees", k)
			}
			delete(ref, k)
		} else {
			if sk.insert(k) == ref[k] {
				t.Fatalf("insert(%s) disagrees", k)
			}
			ref[k] = true
		}
	}
	want := make([]string, 0, len(ref))
	for k := range ref {
		want = append(want, k)
	}
	slices.Sort(want)
	if got := sk.all(); !slices.Equal(got, want) {
		t.Fatalf("order differs: %d vs %d keys", len(got), len(want))
	}
	if len(sk.chunks) < 2 {
		t.Fatalf("test did not exercise chunk splits: %d chunks", len(sk.chunks))
	}
	var got []string
	sk.ascendPrefix("k/17/", func(k string) bool { got = append(got, k); return true })
	var exp []string
	for _, k := range want {
		if strings.HasPrefix(k, "k/17/") {
			exp = append(exp, k)
		}
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("prefix scan: %d vs %d", len(got), len(exp))
	}
}
