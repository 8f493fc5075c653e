package structs

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidateWrite(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	svc := func(mod func(*NodeService)) *RegisterRequest {
		s := &NodeService{ID: "web-1", Service: "web", Tags: []string{"v1"}, Meta: map[string]string{"version": "2"}}
		mod(s)
		return &RegisterRequest{Node: "n1", Address: "10.0.0.1", Service: s}
	}
	cases := []struct {
		name  string
		req   any
		field string // "" = valid
	}{
		{"valid registration", svc(func(*NodeService) {}), ""},
		{"unicode names are fine", &RegisterRequest{Node: "nœud-ü", Address: "10.0.0.1"}, ""},
		{"U+FFFD itself is valid", &RegisterRequest{Node: "a\uFFFDb", Address: "10.0.0.1"}, ""},
		{"name at the limit", &RegisterRequest{Node: long(MaxNameLength), Address: "10.0.0.1"}, ""},
		{"node NUL", &RegisterRequest{Node: "n\x001", Address: "10.0.0.1"}, "Node"},
		{"node newline", &RegisterRequest{Node: "n1\nevil", Address: "10.0.0.1"}, "Node"},
		{"node tab", &RegisterRequest{Node: "n\t1", Address: "10.0.0.1"}, "Node"},
		{"node DEL", &RegisterRequest{Node: "n\x7f", Address: "10.0.0.1"}, "Node"},
		{"node C1 control", &RegisterRequest{Node: "n\u0085", Address: "10.0.0.1"}, "Node"},
		{"node invalid UTF-8", &RegisterRequest{Node: "n\xff1", Address: "10.0.0.1"}, "Node"},
		{"node too long", &RegisterRequest{Node: long(MaxNameLength + 1), Address: "10.0.0.1"}, "Node"},
		{"900 KB service name", svc(func(s *NodeService) { s.Service = long(900_000) }), "Service.Service"},
		{"service name NUL", svc(func(s *NodeService) { s.Service = "web\x00" }), "Service.Service"},
		{"service ID newline", svc(func(s *NodeService) { s.ID = "web\n1" }), "Service.ID"},
		{"tag invalid UTF-8", svc(func(s *NodeService) { s.Tags = []string{"ok", "b\xc3"} }), "Service.Tags[1]"},
		{"tag too long", svc(func(s *NodeService) { s.Tags = []string{long(MaxTagLength + 1)} }), "Service.Tags[0]"},
		{"too many tags", svc(func(s *NodeService) { s.Tags = make([]string, MaxTags+1) }), "Service.Tags"},
		{"meta key control", svc(func(s *NodeService) { s.Meta = map[string]string{"a\rb": "x"} }), "Service.Meta key"},
		{"meta key too long", svc(func(s *NodeService) { s.Meta = map[string]string{long(MetaKeyMaxLength + 1): "x"} }), "Service.Meta key"},
		{"meta value too long", svc(func(s *NodeService) { s.Meta = map[string]string{"k": long(MetaValueMaxLength + 1)} }), "Service.Meta[k]"},
		{"node meta empty key", &RegisterRequest{Node: "n1", NodeMeta: map[string]string{"": "x"}}, "NodeMeta"},
		{"check ID NUL", &RegisterRequest{Node: "n1", Check: &HealthCheck{Node: "n1", CheckID: "c\x00"}}, "Check.CheckID"},
		{"check name newline", &RegisterRequest{Node: "n1", Checks: []*HealthCheck{{CheckID: "ok"}, {CheckID: "c", Name: "x\ny"}}}, "Checks[1].Name"},
		{"check output is free text", &RegisterRequest{Node: "n1", Check: &HealthCheck{CheckID: "c", Output: "line1\nline2\xff"}}, ""},
		{"deregister service ID NUL", &DeregisterRequest{Node: "n1", ServiceID: "s\x00"}, "ServiceID"},
		{"deregister check ID invalid", &DeregisterRequest{Node: "n1", CheckID: "\xfe"}, "CheckID"},
		{"KV key with slashes and spaces", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: "a/b c/", Value: []byte("v")}}, ""},
		{"KV key at the limit", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: long(MaxKVKeyLength)}}, ""},
		{"1 MiB KV key", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: long(1 << 20)}}, "Key"},
		{"KV key invalid UTF-8", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: "a\xffb"}}, "Key"},
		{"KV value over 512 KiB", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: "k", Value: make([]byte, MaxKVValueSize+1)}}, "Value"},
		{"KV value at 512 KiB", &KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: "k", Value: make([]byte, MaxKVValueSize)}}, ""},
		{"not a validator", &KeyRequest{Key: "\x00"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateWrite(tc.req)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want a FieldError for %s", err, tc.field)
			}
			if fe.Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tc.field, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error echoes the input: %d bytes", len(err.Error()))
			}
			// The error crosses RPC as text and must map back.
			if back := ErrorFromString(err.Error()); !errors.Is(back, ErrInvalidRequest) || back.Error() != err.Error() {
				t.Fatalf("ErrorFromString(%q) = %v", err.Error(), back)
			}
		})
	}
}

// FuzzValidateText: ValidateText accepts exactly the valid UTF-8 strings
// without control characters within the length limit.
func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"", "web", "a\x00b", "x\n", "\xff", "é", "\u0085", "\uFFFD", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const max = 16
		want := len(s) <= max && utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
		err := ValidateText("f", s, max)
		if (err == nil) != want {
			t.Fatalf("ValidateText(%q) = %v, want ok=%v", s, err, want)
		}
	})
}
