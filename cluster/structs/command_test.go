package structs

import (
	"errors"
	"reflect"
	"testing"
)

func commandCases() []any {
	return []any{
		&RegisterRequest{
			Datacenter: "dc1", ID: "id", Node: "n1", Address: "10.0.0.1",
			TaggedAddresses: map[string]string{"wan": "1.2.3.4"}, NodeMeta: map[string]string{"rack": "a"},
			Service: &NodeService{ID: "web-1", Service: "web", Tags: []string{"v1", "prod"}, Address: "10.0.0.2", Port: 8080,
				Meta: map[string]string{"k": "v"}, Weights: &Weights{Passing: 3, Warning: 1}, EnableTagOverride: true, CreateIndex: 5, ModifyIndex: 9},
			Check:          &HealthCheck{Node: "n1", CheckID: "c", Name: "chk", Status: HealthCritical, Output: "out", ServiceID: "web-1", ServiceName: "web", ServiceTags: []string{}, Type: "ttl"},
			Checks:         []*HealthCheck{{CheckID: "a"}, {CheckID: "b", Status: HealthWarning}},
			SkipNodeUpdate: true,
		},
		&RegisterRequest{Node: "bare", Address: "127.0.0.1"},
		&RegisterRequest{Node: "neg", Address: "x", Service: &NodeService{Service: "s", Port: -1, Tags: []string{}}},
		&DeregisterRequest{Datacenter: "dc2", Node: "n", ServiceID: "s", CheckID: "c"},
		&KVSRequest{Op: KVCAS, DirEnt: DirEntry{Key: "a/b", Value: []byte{0, 1, 2}, Flags: 42, LockIndex: 3, Session: "s", ModifyIndex: 7}},
		&KVSRequest{Op: KVSet, DirEnt: DirEntry{Key: "empty", Value: []byte{}}},
		&KVSRequest{Op: KVDelete, DirEnt: DirEntry{Key: "nil"}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, in := range commandCases() {
		b, err := Encode(RegisterRequestType, in)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
		if err := DecodeCommand(b[1:], out); err != nil {
			t.Fatalf("%T: %v", in, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip of %T:\n in %+v\nout %+v", in, in, out)
		}
		// Every truncation is an error, never a panic or a silent success.
		for i := 1; i < len(b)-1; i++ {
			out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
			if err := DecodeCommand(b[1:i], out); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("%T truncated to %d bytes: err %v", in, i, err)
			}
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, in := range commandCases() {
		b, _ := Encode(KVSRequestType, in)
		f.Add(b[1:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r RegisterRequest
		var d DeregisterRequest
		var k KVSRequest
		_ = DecodeCommand(b, &r)
		_ = DecodeCommand(b, &d)
		_ = DecodeCommand(b, &k)
	})
}
