package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadHCLTwin: the HCL twin of testdata/full loads to exactly the
// same configuration as the JSON file, so both formats share one path.
func TestLoadHCLTwin(t *testing.T) {
	j, err := Load([]string{"testdata/full"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Load([]string{"testdata/full-hcl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, h) {
		t.Fatalf("HCL and JSON differ:\nJSON %+v\nHCL  %+v", j, h)
	}
}

// FuzzHCLConfig feeds arbitrary bytes through the HCL config path (parse,
// shape, ignore list, strict decode, line lookup): it must never panic,
// and every failure must name the file.
func FuzzHCLConfig(f *testing.F) {
	for _, p := range []string{"testdata/corpus/*.hcl", "testdata/bad/*.hcl", "testdata/full-hcl/*.hcl", "testdata/mixed/*.hcl"} {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := DefaultConfig()
		_, err := c.mergeFile("fuzz.hcl", data)
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.hcl") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
