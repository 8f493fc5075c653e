package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
)

// testState is a small store's snapshot stream: 2 nodes, 3 services,
// 1 check, 2 keys.
func testState(t testing.TB) []byte {
	t.Helper()
	st := state.New()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.EnsureRegistration(1, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{ID: "web1", Service: "web", Port: 80}}))
	must(st.EnsureRegistration(2, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{ID: "db", Service: "db", Port: 5432}}))
	must(st.EnsureRegistration(3, &structs.RegisterRequest{Node: "n2", Address: "10.0.0.2",
		Service: &structs.NodeService{ID: "web2", Service: "web", Port: 80},
		Check:   &structs.HealthCheck{Node: "n2", CheckID: "serfHealth", Name: "Serf", Status: structs.HealthPassing}}))
	must(st.KVSSet(4, &structs.DirEntry{Key: "a", Value: []byte("1")}))
	must(st.KVSSet(5, &structs.DirEntry{Key: "b/c", Value: []byte("2")}))
	var buf bytes.Buffer
	must(st.Snapshot().Persist(&buf))
	return buf.Bytes()
}

func testMeta() *raft.SnapshotMeta {
	return &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, ID: "2-5-1700000000000", Index: 5, Term: 2,
		Configuration: raft.Configuration{Servers: []raft.Server{{ID: "s1", Address: "127.0.0.1:8300", Suffrage: raft.Voter}}}, ConfigurationIndex: 1}
}

func TestRoundTripAndInspect(t *testing.T) {
	st := testState(t)
	b, err := Encode(testMeta(), st)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.State, st) || a.Meta.Index != 5 || a.Meta.Term != 2 || a.Meta.Size != int64(len(st)) || len(a.Meta.Configuration.Servers) != 1 {
		t.Fatalf("decoded meta %+v", a.Meta)
	}
	info, err := a.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %d %d %d %d %v", info.ID, info.Size, info.Index, info.Term, info.Version, info.Tables)
	want := fmt.Sprintf("2-5-1700000000000 %d 5 2 1 [{Nodes 2} {Services 3} {Checks 1} {KVS 2} {Sessions 0} {PreparedQuery 0} {Coordinate 0}]", len(st))
	if got != want {
		t.Fatalf("inspect:\n got %s\nwant %s", got, want)
	}
}

// rebuild writes a gzip tar of the given members, in order, for the
// malformed-archive cases the writer itself never produces.
func rebuild(t *testing.T, members ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o600, Size: int64(len(m[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestReadRefusesDamage(t *testing.T) {
	st := testState(t)
	good, err := Encode(testMeta(), st)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Decode(good)
	sums := func(meta, state string) string {
		return fmt.Sprintf("%x  meta.json\n%x  state.bin\n", sha256.Sum256([]byte(meta)), sha256.Sum256([]byte(state)))
	}
	mb := `{"Version":1,"ID":"x","Index":5,"Term":2,"Size":` + fmt.Sprint(len(st)) + `}`
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	badState := bytes.Clone(st)
	badState[len(badState)-1] = 7 // not the end record
	for name, tc := range map[string]struct {
		in  []byte
		err string
	}{
		"empty":         {nil, "not a gzip stream"},
		"not gzip":      {[]byte("hello"), "not a gzip stream"},
		"flipped byte":  {flipped, ""},
		"truncated":     {good[:len(good)-10], ""},
		"half":          {good[:len(good)/2], ""},
		"missing sums":  {rebuild(t, [2]string{"meta.json", mb}, [2]string{"state.bin", string(st)}), `"SHA256SUMS" is missing`},
		"extra member":  {rebuild(t, [2]string{"meta.json", mb}, [2]string{"state.bin", string(st)}, [2]string{"SHA256SUMS", sums(mb, string(st))}, [2]string{"evil", "x"}), `unexpected member "evil"`},
		"duplicate":     {rebuild(t, [2]string{"meta.json", mb}, [2]string{"meta.json", mb}), "appears twice"},
		"wrong sum":     {rebuild(t, [2]string{"meta.json", mb}, [2]string{"state.bin", string(st)}, [2]string{"SHA256SUMS", sums(mb, "other")}), "SHA-256 mismatch for state.bin"},
		"size mismatch": {rebuild(t, [2]string{"meta.json", strings.Replace(mb, `"Size":`, `"Size":1`, 1)}, [2]string{"state.bin", string(st)}, [2]string{"SHA256SUMS", sums(strings.Replace(mb, `"Size":`, `"Size":1`, 1), string(st))}), "meta says"},
		"zero index":    {rebuild(t, [2]string{"meta.json", strings.Replace(mb, `"Index":5`, `"Index":0`, 1)}, [2]string{"state.bin", string(st)}, [2]string{"SHA256SUMS", sums(strings.Replace(mb, `"Index":5`, `"Index":0`, 1), string(st))}), "index 0"},
		"bad sums line": {rebuild(t, [2]string{"meta.json", mb}, [2]string{"state.bin", string(st)}, [2]string{"SHA256SUMS", "nonsense\n"}), "bad SHA256SUMS line"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode: %v, want ErrCorrupt", err)
			}
			if tc.err != "" && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Decode: %v, want %q", err, tc.err)
			}
		})
	}
	// Intact archive, state the state machine cannot load: Read accepts
	// the container, Verify refuses the content.
	b, err := Encode(&a.Meta, badState)
	if err != nil {
		t.Fatal(err)
	}
	x, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of an unloadable state: %v", err)
	}
}

func TestSaveFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SaveFile(path, []byte("new contents")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new contents" {
		t.Fatalf("after save: %q %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
	// A directory that cannot be written: error, old file untouched.
	if err := SaveFile(filepath.Join(dir, "missing", "x.snap"), []byte("x")); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
}

// FuzzRead: Read never panics or over-allocates, and whatever it accepts
// verifies: the checksums hold and the archive re-encodes to one that
// decodes to the same meta and state.
func FuzzRead(f *testing.F) {
	st := testState(f)
	good, err := Encode(testMeta(), st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := Encode(&a.Meta, a.State)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded archive refused: %v", err)
		}
		if !bytes.Equal(b2.State, a.State) || b2.Meta.Index != a.Meta.Index || b2.Meta.Term != a.Meta.Term {
			t.Fatal("re-encoded archive differs")
		}
		_, _ = a.Inspect() // must not panic on any accepted state
	})
}
