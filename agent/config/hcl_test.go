package config

import (
	"encoding/json"
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

// TestHCLShape pins the HCL → JSON-document conversion: each case's HCL
// must give the same document as its JSON.
func TestHCLShape(t *testing.T) {
	for _, tc := range []struct{ name, hcl, json string }{
		{"scalars", `a = "x"
n = 0x10
f = 1.5
b = true`, `{"a":"x","n":16,"f":1.5,"b":true}`},
		{"heredoc", "notes = <<EOT\nline\nEOT\n", `{"notes":"line\n"}`},
		{"block for list field", `retry_join = ["a"]
services { name = "x" }`, `{"retry_join":["a"],"services":[{"name":"x"}]}`},
		{"repeated list blocks concatenate", `checks { name = "a" }
checks { name = "b" }`, `{"checks":[{"name":"a"},{"name":"b"}]}`},
		{"repeated service blocks append to services", `services = [{ name = "a" }]
service { name = "b" }
service { name = "c" }`, `{"services":[{"name":"a"},{"name":"b"},{"name":"c"}]}`},
		{"repeated service blocks before services", `service { name = "b" }
service { name = "c" }
services = [{ name = "a" }]`, `{"services":[{"name":"a"},{"name":"b"},{"name":"c"}]}`},
		{"single service block stays", `service { name = "b" }`, `{"service":{"name":"b"}}`},
		{"nested block in list element", `service {
  name = "web"
  checks = [{ ttl = "1s" }]
  check { ttl = "2s" }
}`, `{"service":{"name":"web","checks":[{"ttl":"1s"}],"check":{"ttl":"2s"}}}`},
		{"labelled block nests", `service "web" { port = 80 }`, `{"service":{"web":{"port":80}}}`},
		{"map of lists", `service {
  check {
    header { X-A = ["1", "2"] }
  }
}`, `{"service":{"check":{"header":{"X-A":["1","2"]}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHCL([]byte(tc.hcl), reflect.TypeFor[fileConfig](), map[string]int{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseJSON([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Fatalf("got  %s\nwant %s", gb, wb)
			}
		})
	}
}

// FuzzJSONConfig is FuzzHCLConfig for JSON files, whose error lines come
// from jsonLines.
func FuzzJSONConfig(f *testing.F) {
	for _, p := range []string{"testdata/corpus/*.json", "testdata/bad/*.json", "testdata/full/*.json"} {
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
		_, err := c.mergeFile("fuzz.json", data)
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.json") {
			t.Fatalf("error does not name the file: %v", err)
		}
		jsonLines(data) // never panics, whatever the input
	})
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"port", "port", 0}, {"prot", "port", 1}, {"chek", "check", 1},
		{"datacentre", "datacenter", 1}, {"abc", "", 3}, {"", "ab", 2}, {"ca", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestUIEnabled: ui_config.enabled and Consul's legacy top-level ui both
// turn the UI on, in either format.
func TestUIEnabled(t *testing.T) {
	for _, tc := range []struct {
		name, file, body string
		want             bool
	}{
		{"default", "a.json", `{}`, false},
		{"ui_config hcl", "a.hcl", "ui_config {\n  enabled = true\n}\n", true},
		{"ui_config json", "a.json", `{"ui_config": {"enabled": true}}`, true},
		{"legacy ui", "a.hcl", "ui = true\n", true},
		{"legacy ui false", "a.json", `{"ui": false}`, false},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load([]string{dir}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.UIEnabled() != tc.want || len(c.Warnings) != 0 {
			t.Errorf("%s: UIEnabled = %v (warnings %q), want %v", tc.name, c.UIEnabled(), c.Warnings, tc.want)
		}
	}
}
