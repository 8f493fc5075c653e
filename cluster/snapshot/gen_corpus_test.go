package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzCorpus regenerates the kept seed corpus of FuzzRead when
// CAIRN_WRITE_CORPUS=1 (run it after changing the archive format).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CAIRN_WRITE_CORPUS") != "1" {
		t.Skip("set CAIRN_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzRead")
	}
	st := testState(t)
	good, err := Encode(testMeta(), st)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/3] ^= 0x10
	seeds := map[string][]byte{
		"good":          good,
		"truncated":     good[:len(good)-9],
		"flipped":       flipped,
		"gzip_header":   good[:10],
		"extra_member":  rebuild(t, [2]string{"meta.json", "{}"}, [2]string{"evil", "x"}),
		"missing_state": rebuild(t, [2]string{"meta.json", "{}"}),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
