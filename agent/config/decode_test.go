package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeStrictKeyMatching(t *testing.T) {
	// The same check in Consul's file spelling, the consul/api spelling and
	// python-consul's lower-case spelling decodes to the same value.
	bodies := map[string]string{
		"snake":  `{"check_id": "c1", "name": "n", "service_id": "web", "http": "http://x/", "interval": "10s", "deregister_critical_service_after": "1m", "tls_skip_verify": true}`,
		"api":    `{"CheckID": "c1", "Name": "n", "ServiceID": "web", "HTTP": "http://x/", "Interval": "10s", "DeregisterCriticalServiceAfter": "1m", "TLSSkipVerify": true}`,
		"python": `{"id": "c1", "name": "n", "serviceid": "web", "http": "http://x/", "interval": "10s", "deregistercriticalserviceafter": "1m", "tlsskipverify": true}`,
	}
	want := CheckDefinition{ID: "c1", Name: "n", ServiceID: "web", HTTP: "http://x/", Interval: Duration(10 * time.Second),
		DeregisterCriticalServiceAfter: Duration(time.Minute), TLSSkipVerify: true}
	for name, body := range bodies {
		var got CheckDefinition
		if err := DecodeStrict([]byte(body), &got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	var s ServiceDefinition
	if err := DecodeStrict([]byte(`{"Name": "web", "EnableTagOverride": true, "Weights": {"Passing": 3}, "script_args": 1}`), &s); err == nil {
		t.Error("script_args on a service decoded: aliases must stay on their own struct")
	}
	var c CheckDefinition
	if err := DecodeStrict([]byte(`{"ScriptArgs": ["/bin/true"]}`), &c); err != nil || !reflect.DeepEqual(c.Args, []string{"/bin/true"}) {
		t.Errorf("ScriptArgs alias: %v, %v", c.Args, err)
	}
}

func TestDecodeStrictValues(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type target struct {
		S    string              `json:"s"`
		B    bool                `json:"b"`
		I8   int8                `json:"i8"`
		U    uint                `json:"u"`
		F    float64             `json:"f"`
		P    *inner              `json:"p"`
		M    map[string]int      `json:"m"`
		L    []string            `json:"l"`
		Any  any                 `json:"any"`
		Raw  json.RawMessage     `json:"raw"`
		D    Duration            `json:"d"`
		MD   map[string]Duration `json:"md"`
		Skip string              `json:"-"`
	}
	cases := []struct {
		name, in string
		want     target
		err      string
	}{
		{name: "scalars", in: `{"s":"x","b":true,"i8":-128,"u":7,"f":1.5}`, want: target{S: "x", B: true, I8: -128, U: 7, F: 1.5}},
		{name: "pointer allocated", in: `{"p":{"n":3}}`, want: target{P: &inner{N: 3}}},
		{name: "null zeroes pointer and slice", in: `{"p":null,"l":null,"s":null}`, want: target{}},
		{name: "any gets float64", in: `{"any":{"a":[1,"x"]}}`, want: target{Any: map[string]any{"a": []any{1.0, "x"}}}},
		{name: "raw kept", in: `{"raw":{"k":[1,2]}}`, want: target{Raw: json.RawMessage(`{"k":[1,2]}`)}},
		{name: "durations", in: `{"d":"1h2m","md":{"*":"5s"}}`, want: target{D: Duration(time.Hour + 2*time.Minute), MD: map[string]Duration{"*": Duration(5 * time.Second)}}},
		{name: "int8 overflow", in: `{"i8":128}`, err: "i8: want integer that fits int8, got 128"},
		{name: "negative uint", in: `{"u":-1}`, err: "u: want non-negative integer that fits uint, got -1"},
		{name: "float overflow", in: `{"f":1e999}`, err: "f: number 1e999 out of range"},
		{name: "array for string", in: `{"s":[]}`, err: "s: want string, got array"},
		{name: "object for list", in: `{"l":{}}`, err: "l: want array, got object"},
		{name: "list element", in: `{"l":["a",2]}`, err: "l[1]: want string, got number"},
		{name: "map value", in: `{"m":{"a":"1"}}`, err: "m.a: want number, got string"},
		{name: "nested unknown", in: `{"p":{"n":1,"x":2}}`, err: "p.x: unknown key"},
		{name: "json:- is unknown", in: `{"skip":"x"}`, err: "skip: unknown key"},
		{name: "duration number", in: `{"d":10}`, err: `d: want duration string such as "10s", got number`},
		{name: "bad duration in map", in: `{"md":{"web":"soon"}}`, err: `md.web: bad duration "soon"`},
		{name: "top level", in: `"x"`, err: "want object, got string"},
		{name: "empty", in: ``, err: "invalid JSON: unexpected end of input"},
		{name: "truncated", in: `{"s":`, err: "invalid JSON: unexpected end of input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got target
			err := DecodeStrict([]byte(tc.in), &got)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("err %T is not a *DecodeError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeStrictNeedsPointer(t *testing.T) {
	var c Config
	for _, v := range []any{c, nil, (*Config)(nil)} {
		if err := DecodeStrict([]byte(`{}`), v); err == nil {
			t.Errorf("DecodeStrict(%T) succeeded", v)
		}
	}
}

func TestDecodeStrictMapAddsKeys(t *testing.T) {
	v := struct{ M map[string]string }{M: map[string]string{"a": "1"}}
	if err := DecodeStrict([]byte(`{"m":{"b":"2"}}`), &v); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.M, map[string]string{"a": "1", "b": "2"}) {
		t.Fatalf("map = %v", v.M)
	}
}

func TestCheckValidate(t *testing.T) {
	cases := []struct {
		name string
		c    CheckDefinition
		err  string
	}{
		{"ttl", CheckDefinition{TTL: Duration(time.Second)}, ""},
		{"http", CheckDefinition{HTTP: "https://h:1/x", Interval: Duration(time.Second), Method: "HEAD"}, ""},
		{"tcp", CheckDefinition{TCP: "[::1]:80", Interval: Duration(time.Minute)}, ""},
		{"args", CheckDefinition{Args: []string{"/bin/true"}, Interval: Duration(time.Second)}, ""},
		{"negative ttl", CheckDefinition{TTL: Duration(-time.Second)}, "ttl: must be positive, got -1s"},
		{"args no interval", CheckDefinition{Args: []string{"x"}}, "interval: required for args checks"},
		{"tcp no port", CheckDefinition{TCP: "localhost", Interval: Duration(time.Second)}, `tcp: "localhost" is not host:port`},
		{"tcp port range", CheckDefinition{TCP: "h:0", Interval: Duration(time.Second)}, `tcp: "h:0": port must be 1..65535`},
		{"http scheme", CheckDefinition{HTTP: "ftp://x", Interval: Duration(time.Second)}, `http: "ftp://x" is not an http:// or https:// URL`},
		{"method on tcp", CheckDefinition{TCP: "h:1", Method: "GET", Interval: Duration(time.Second)}, "method: only valid for http checks"},
		{"lower method", CheckDefinition{HTTP: "http://h/", Method: "get", Interval: Duration(time.Second)}, `method: "get" is not an upper-case HTTP method`},
		{"bad status", CheckDefinition{TTL: Duration(time.Second), Status: "ok"}, `status: "ok" is not one of passing, warning, critical`},
		{"negative timeout", CheckDefinition{TTL: Duration(time.Second), Timeout: Duration(-1)}, "timeout: must not be negative, got -1ns"},
		{"empty program", CheckDefinition{Args: []string{""}, Interval: Duration(time.Second)}, "args: the first element (the program) is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("Validate = %v, want %q", err, tc.err)
			}
		})
	}
	args := CheckDefinition{Args: []string{"/bin/true"}, Interval: Duration(time.Second)}
	if err := args.AllowedBy(false); !errors.Is(err, ErrScriptChecksDisabled) || !strings.Contains(err.Error(), "--enable-local-script-checks") {
		t.Errorf("AllowedBy(false) = %v", err)
	}
	if err := args.AllowedBy(true); err != nil {
		t.Errorf("AllowedBy(true) = %v", err)
	}
	ttl := CheckDefinition{TTL: Duration(time.Second)}
	if err := ttl.AllowedBy(false); err != nil {
		t.Errorf("ttl AllowedBy(false) = %v", err)
	}
}

func TestServiceDefaultsAndValidate(t *testing.T) {
	s := ServiceDefinition{Name: "web", Check: &CheckDefinition{TTL: Duration(time.Second)}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	if s.ID != "web" || s.Weights != (Weights{1, 1}) {
		t.Errorf("service defaults: %+v", s)
	}
	if c := s.Check; c.ID != "service:web" || c.Name != "Service 'web' check" || c.ServiceID != "web" || c.Status != StatusCritical {
		t.Errorf("check defaults: %+v", c)
	}
	bad := []struct {
		s   ServiceDefinition
		err string
	}{
		{ServiceDefinition{}, "name: required"},
		{ServiceDefinition{Name: "a", Port: 65536}, "port: 65536 is not in 0..65535"},
		{ServiceDefinition{Name: "a", Weights: Weights{Passing: 0, Warning: 2}}, "weights.passing: must be at least 1, got 0"},
		{ServiceDefinition{Name: "a", Meta: map[string]string{"": "x"}}, "meta: empty key"},
		{ServiceDefinition{Name: "a", Meta: map[string]string{"a.b": "x"}}, `meta: key "a.b": only letters, digits, '-' and '_' are allowed`},
		{ServiceDefinition{Name: "a", Meta: map[string]string{"k": strings.Repeat("v", MetaValueMaxLength+1)}}, `meta: key "k": value longer than 512 bytes`},
		{ServiceDefinition{Name: "a", Checks: []CheckDefinition{{TTL: 1}, {}}}, "checks[1]: one of http, tcp, ttl or args is required"},
		{ServiceDefinition{Name: "a", Check: &CheckDefinition{TTL: 1, ServiceID: "b"}}, `check: service_id "b" does not match the service's id "a"`},
	}
	for _, b := range bad {
		if err := b.s.Validate(); err == nil || err.Error() != b.err {
			t.Errorf("Validate(%+v) = %v, want %q", b.s, err, b.err)
		}
	}
}

// FuzzDecodeStrict: decoding arbitrary bytes into the config never panics,
// and anything accepted was valid JSON. Seeds live in testdata/fuzz.
func FuzzDecodeStrict(f *testing.F) {
	for _, dir := range []string{"testdata/full", "testdata/merge", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := fileConfig{Config: *DefaultConfig()}
		err := DecodeStrict(data, &fc)
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err == nil {
			_ = fc.validateDefinitions()
			_ = fc.Config.Validate()
		}
		var s ServiceDefinition
		_ = DecodeStrict(data, &s)
	})
}
