package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// modifyIndex reads key's ModifyIndex from the agent (for --cas cases).
func modifyIndex(t *testing.T, addr, key string) uint64 {
	t.Helper()
	var es []kvEntry
	if _, err := newAPIClient(&Globals{HTTPAddr: addr}).getJSON(context.Background(), kvPath(key), nil, &es); err != nil || len(es) != 1 {
		t.Fatalf("read %s: %v %v", key, es, err)
	}
	return es[0].ModifyIndex
}

// indexRE masks raft indexes in `kv get --detailed`.
var indexRE = regexp.MustCompile(`(CreateIndex|ModifyIndex)( +)\d+`)

func TestKVCommands(t *testing.T) {
	a := devAgent(t)
	file := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(file, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		cmd   func() runner // built when the step runs (CAS reads the live index)
		stdin string
		want  result
	}{
		{"put", func() runner { return &KVPutCmd{Key: "/app/a", Value: "one", Flags: 3} }, "",
			result{stdout: "Success! Data written to: app/a\n"}},
		{"put stdin", func() runner { return &KVPutCmd{Key: "app/b", Value: "-"} }, "two",
			result{stdout: "Success! Data written to: app/b\n"}},
		{"put file", func() runner { return &KVPutCmd{Key: "app/c", Value: "@" + file} }, "",
			result{stdout: "Success! Data written to: app/c\n"}},
		{"put missing file", func() runner { return &KVPutCmd{Key: "app/d", Value: "@" + file + ".none"} }, "",
			result{stderr: "~^Error! reading value: open .*: no such file or directory\n$", code: 1}},
		{"put no key", func() runner { return &KVPutCmd{Key: "/", Value: "x"} }, "",
			result{stderr: "Error! Missing KEY argument\n", code: 1}},
		{"get", func() runner { return &KVGetCmd{Key: "app/a"} }, "", result{stdout: "one\n"}},
		{"get file value", func() runner { return &KVGetCmd{Key: "app/c"} }, "", result{stdout: "from-file\n"}},
		{"get missing", func() runner { return &KVGetCmd{Key: "app/zz"} }, "",
			result{stderr: "Error! No key exists at: app/zz\n", code: 1}},
		{"get no key", func() runner { return &KVGetCmd{} }, "",
			result{stderr: "Error! Missing KEY argument\n", code: 1}},
		{"get recurse", func() runner { return &KVGetCmd{Key: "app/", Recurse: true} }, "",
			result{stdout: "app/a:one\napp/b:two\napp/c:from-file\n"}},
		{"get recurse nothing", func() runner { return &KVGetCmd{Key: "none/", Recurse: true} }, "", result{}},
		{"get keys", func() runner { return &KVGetCmd{Keys: true, Separator: "/"} }, "", result{stdout: "app/\n"}},
		{"cas without index", func() runner { return &KVPutCmd{Key: "app/a", Value: "x", CAS: true} }, "",
			result{stderr: "Must specify --modify-index with --cas!\n", code: 1}},
		{"cas stale", func() runner { return &KVPutCmd{Key: "app/a", Value: "x", CAS: true, ModifyIndex: ptr[uint64](1)} }, "",
			result{stderr: "Error! Did not write to app/a: CAS failed\n", code: 1}},
		{"cas current", func() runner {
			return &KVPutCmd{Key: "app/a", Value: "x", CAS: true, ModifyIndex: ptr(modifyIndex(t, a.HTTPAddr, "app/a"))}
		}, "", result{stdout: "Success! Data written to: app/a\n"}},
		{"get after cas", func() runner { return &KVGetCmd{Key: "app/a"} }, "", result{stdout: "x\n"}},
		{"delete cas stale", func() runner { return &KVDeleteCmd{Key: "app/b", CAS: true, ModifyIndex: ptr[uint64](1)} }, "",
			result{stderr: "Error! Did not delete key app/b: CAS failed\n", code: 1}},
		{"delete cas and recurse", func() runner { return &KVDeleteCmd{Key: "a", Recurse: true, CAS: true, ModifyIndex: ptr[uint64](1)} }, "",
			result{stderr: "Cannot specify both --cas and --recurse!\n", code: 1}},
		{"delete cas without index", func() runner { return &KVDeleteCmd{Key: "a", CAS: true} }, "",
			result{stderr: "Must specify --modify-index with --cas!\n", code: 1}},
		{"delete no key", func() runner { return &KVDeleteCmd{} }, "",
			result{stderr: "Error! Missing KEY argument\n", code: 1}},
		{"delete", func() runner { return &KVDeleteCmd{Key: "app/b"} }, "", result{stdout: "Success! Deleted key: app/b\n"}},
		{"get deleted", func() runner { return &KVGetCmd{Key: "app/b"} }, "",
			result{stderr: "Error! No key exists at: app/b\n", code: 1}},
		{"delete recurse", func() runner { return &KVDeleteCmd{Key: "app/", Recurse: true} }, "",
			result{stdout: "Success! Deleted keys with prefix: app/\n"}},
		{"get recurse emptied", func() runner { return &KVGetCmd{Key: "app/", Recurse: true} }, "", result{}},
	}
	for _, s := range steps {
		check(t, s.name, a.HTTPAddr, s.cmd(), s.stdin, s.want)
	}

	check(t, "put for detailed", a.HTTPAddr, &KVPutCmd{Key: "d", Value: "v", Flags: 42}, "", result{stdout: "Success! Data written to: d\n"})
	got := check(t, "get detailed", a.HTTPAddr, &KVGetCmd{Key: "d", Detailed: true}, "", result{stdout: "~Value +v\n$"})
	golden(t, "kv_get_detailed", indexRE.ReplaceAllString(got.stdout, "$1${2}N"))

	for _, c := range []struct {
		name string
		cmd  runner
		want string
	}{
		{"get", &KVGetCmd{Key: "k"}, "Error: Error connecting to Cairn agent: "},
		{"put", &KVPutCmd{Key: "k"}, "Error! Failed writing data: Error connecting to Cairn agent: "},
		{"delete", &KVDeleteCmd{Key: "k"}, "Error! Failed deleting data: Error connecting to Cairn agent: "},
	} {
		check(t, c.name+" agent down", unreachable, c.cmd, "", result{stderr: "~^" + regexp.QuoteMeta(c.want), code: 1})
	}
}

func TestKVPathEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"a/b":        "/v1/kv/a/b",
		"/a":         "/v1/kv/a",
		"sp ace/x?y": "/v1/kv/sp%20ace/x%3Fy",
		"":           "/v1/kv/",
	} {
		if got := kvPath(in); got != want {
			t.Errorf("kvPath(%q) = %q, want %q", in, got, want)
		}
	}
}
