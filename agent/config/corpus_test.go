package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestCorpus loads each realistic Consul config of testdata/corpus alone:
// every file must load, and its warnings (the ignored Consul keys, with
// file:line) must be exactly those of its golden .warnings file.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*.*")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, f := range files {
		ext := filepath.Ext(f)
		if ext != extHCL && ext != extJSON {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load([]string{f}, nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := strings.ReplaceAll(strings.Join(c.Warnings, "\n"), f, "{file}")
			golden := f + ".warnings"
			if *update {
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != strings.TrimSuffix(string(want), "\n") {
				t.Fatalf("warnings\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if n < 10 {
		t.Fatalf("corpus has %d configs, want the 10 committed", n)
	}
}

// TestCorpusMergedDir loads a whole Consul config dir that mixes HCL and
// JSON: lexical order, lists append, later scalars win, and the files
// that are not loaded get one warning each.
func TestCorpusMergedDir(t *testing.T) {
	c, err := Load([]string{"testdata/mixed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server from 10-consul.hcl", c.Server, true},
		{"node_name overridden by 20-node.json", c.NodeName, "node-b"},
		{"retry_join appends across formats", c.RetryJoin, []string{"10.0.0.1", "10.0.0.2"}},
		{"services from both formats in order", serviceNames(c), []string{"web", "api", "db"}},
		{"ui_config.enabled", c.UIEnabled(), true},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	want := []string{
		"skipping file testdata/mixed/README.md, extension must be .hcl or .json",
		"skipping file testdata/mixed/40-old.json.bak, extension must be .hcl or .json",
		"testdata/mixed/10-consul.hcl:5: telemetry: ignored: Cairn does not implement this Consul key",
	}
	got := slices.Clone(c.Warnings)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("warnings\n got %q\nwant %q", got, want)
	}
}

func serviceNames(c *Config) []string {
	var out []string
	for _, s := range c.Services {
		out = append(out, s.Name)
	}
	return out
}

// blockPath is where each block type of ignoredKeys is written in a file,
// with what else the block needs to be valid.
var blockPath = map[reflect.Type]struct{ path, extra string }{
	reflect.TypeFor[Config]():            {"", ""},
	reflect.TypeFor[LegacyTLS]():         {"", ""},
	reflect.TypeFor[Ports]():             {"ports", ""},
	reflect.TypeFor[DNSConfig]():         {"dns_config", ""},
	reflect.TypeFor[Limits]():            {"limits", ""},
	reflect.TypeFor[TLS]():               {"tls", ""},
	reflect.TypeFor[TLSDefaults]():       {"tls.defaults", ""},
	reflect.TypeFor[TLSInternalRPC]():    {"tls.internal_rpc", ""},
	reflect.TypeFor[UIConfig]():          {"ui_config", ""},
	reflect.TypeFor[Autopilot]():         {"autopilot", ""},
	reflect.TypeFor[ServiceDefinition](): {"service", `"name": "web"`},
	reflect.TypeFor[CheckDefinition]():   {"check", `"name": "mem", "ttl": "10s"`},
}

// TestIgnoredKeys writes every key of the ignore list into a file of its
// own, in JSON and in HCL, and expects the file to load with exactly one
// warning, naming the file, the key's line and the key.
func TestIgnoredKeys(t *testing.T) {
	dir := t.TempDir()
	for typ, keys := range ignoredKeys() {
		bp, ok := blockPath[typ]
		if !ok {
			t.Fatalf("no blockPath for %s: add one", typ)
		}
		for _, key := range keys {
			path := joinPath(bp.path, key)
			for _, format := range []string{extJSON, extHCL} {
				name := filepath.Join(dir, strings.ReplaceAll(path, ".", "_")+format)
				doc := nestedDoc(bp.path, key, bp.extra, format)
				if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
					t.Fatal(err)
				}
				c, err := Load([]string{name}, nil)
				if err != nil {
					t.Errorf("%s: %v\n%s", path, err, doc)
					continue
				}
				line := strings.Count(doc[:strings.Index(doc, `"`+key+`"`)], "\n") + 1
				want := fmt.Sprintf("%s:%d: %s: ignored: Cairn does not implement this Consul key", name, line, path)
				if len(c.Warnings) != 1 || c.Warnings[0] != want {
					t.Errorf("%s%s: warnings %q, want [%q]\n%s", path, format, c.Warnings, want, doc)
				}
			}
		}
	}
}

// nestedDoc writes {"a": {"b": {"key": 1, extra}}} for block path "a.b",
// one key per line, in JSON or in HCL (JSON's quoted keys are valid HCL
// keys, and "key = value" lines need no commas).
func nestedDoc(block, key, extra, format string) string {
	sep := ": "
	if format == extHCL {
		sep = " = "
	}
	inner := fmt.Sprintf("%q%s1", key, sep)
	if extra != "" {
		if format == extHCL {
			extra = strings.ReplaceAll(strings.ReplaceAll(extra, ": ", " = "), ", ", "\n")
			inner = extra + "\n" + inner
		} else {
			inner = extra + ",\n" + inner
		}
	}
	if block != "" {
		parts := strings.Split(block, ".")
		for i := len(parts) - 1; i >= 0; i-- {
			if format == extHCL {
				inner = fmt.Sprintf("%q {\n%s\n}", parts[i], inner)
			} else {
				inner = fmt.Sprintf("%q: {\n%s\n}", parts[i], inner)
			}
		}
	}
	if format == extHCL {
		return inner + "\n"
	}
	return "{\n" + inner + "\n}\n"
}

// TestIgnoredKeysAreNotFields keeps the ignore list honest: a key that
// became a real field must leave the list (the field would win anyway).
func TestIgnoredKeysAreNotFields(t *testing.T) {
	for typ, keys := range ignoredKeys() {
		fields, err := fieldsOf(typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, ok := fields[normalizeKey(k)]; ok {
				t.Errorf("%s.%s is both a field and in ignoredKeys: remove it from the list", typ, k)
			}
		}
	}
}
