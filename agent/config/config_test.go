package config

import (
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	host, _ := os.Hostname()
	want := []struct {
		name      string
		got, want any
	}{
		{"node_name", c.NodeName, host},
		{"datacenter", c.Datacenter, "dc1"},
		{"bind_addr", c.BindAddr, "0.0.0.0"},
		{"client_addr", c.ClientAddr, "127.0.0.1"},
		{"domain", c.Domain, "consul."},
		{"log_level", c.LogLevel, "info"},
		{"disable_remote_exec", c.DisableRemoteExec, true},
		{"reconnect_timeout", c.ReconnectTimeout.Duration(), 72 * time.Hour},
		{"ports", c.Ports, Ports{DNS: 8600, HTTP: 8500, Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTPS: PortDisabled}},
		{"dns_config.allow_stale", c.DNSConfig.AllowStale, true},
		{"dns_config.max_stale", c.DNSConfig.MaxStale.Duration(), 87600 * time.Hour},
		{"dns_config.node_ttl", c.DNSConfig.NodeTTL.Duration(), time.Duration(0)},
		{"dns_config.udp_answer_limit", c.DNSConfig.UDPAnswerLimit, 3},
		{"dns_config.a_record_limit", c.DNSConfig.ARecordLimit, 0},
		{"dns_config.recursor_timeout", c.DNSConfig.RecursorTimeout.Duration(), 2 * time.Second},
		{"dns_config.soa", c.DNSConfig.SOA, SOA{Refresh: 3600, Retry: 600, Expire: 86400}},
		{"cache", c.Cache, Cache{MaxEntries: 10000, MaxStale: Duration(72 * time.Hour)}},
		{"limits", c.Limits, Limits{HTTPMaxConnsPerClient: 200, RPCMaxConnsPerClient: 100}},
		{"server", c.Server, false},
		{"enable_local_script_checks", c.EnableLocalScriptChecks, false},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s = %v, want %v", w.name, w.got, w.want)
		}
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load([]string{"testdata/full"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server", c.Server, true},
		{"bootstrap_expect", c.BootstrapExpect, 3},
		{"data_dir", c.DataDir, "/var/lib/cairn"},
		{"node_name", c.NodeName, "web-01"},
		{"node_id", c.NodeID, "adf4238a-882b-9ddc-4a9d-5b6758e4159e"},
		{"datacenter lower-cased", c.Datacenter, "eu-west"},
		{"bind_addr", c.BindAddr, "10.0.0.5"},
		{"advertise defaults to specific bind", c.AdvertiseAddr, "10.0.0.5"},
		{"client_addr", c.ClientAddr, "0.0.0.0"},
		{"retry_join", c.RetryJoin, []string{"10.0.0.6", "10.0.0.7"}},
		{"retry_join_wan", c.RetryJoinWAN, []string{"192.0.2.10"}},
		{"recursors normalised", c.Recursors, []string{"1.1.1.1:53", "9.9.9.9:5353", "[2606:4700:4700::1111]:53"}},
		{"ports", c.Ports, Ports{DNS: 53, HTTP: 8500, Server: 8300, SerfLAN: 8301, SerfWAN: PortDisabled, HTTPS: PortDisabled}},
		{"domain FQDN lower", c.Domain, "cairn."},
		{"alt_domain", c.AltDomain, "consul.example.com."},
		{"log_level folded", c.LogLevel, "warn"},
		{"log_json", c.LogJSON, true},
		{"enable_local_script_checks", c.EnableLocalScriptChecks, true},
		{"disable_remote_exec", c.DisableRemoteExec, false},
		{"reconnect_timeout", c.ReconnectTimeout.Duration(), 24 * time.Hour},
		{"node_meta", c.NodeMeta, map[string]string{"rack": "r12", "instance_type": "m5.large"}},
		{"dns_config", c.DNSConfig, DNSConfig{
			MaxStale:           Duration(10 * time.Second),
			NodeTTL:            Duration(30 * time.Second),
			ServiceTTL:         map[string]Duration{"*": Duration(5 * time.Second), "db*": Duration(time.Minute), "web": Duration(15 * time.Second)},
			OnlyPassing:        true,
			EnableTruncate:     true,
			UDPAnswerLimit:     5,
			ARecordLimit:       4,
			RecursorTimeout:    Duration(3 * time.Second),
			DisableCompression: true,
			SOA:                SOA{Refresh: 7200, Retry: 300, Expire: 172800, MinTTL: 60},
		}},
		{"cache", c.Cache, Cache{MaxEntries: 500, MaxStale: Duration(time.Hour)}},
		{"limits", c.Limits, Limits{HTTPMaxConnsPerClient: 50, RPCMaxConnsPerClient: 0,
			RequestLimits: RequestLimits{Mode: "enforcing", ReadRate: 1000, WriteRate: 50.5}}},
		{"service count (service + services)", len(c.Services), 2},
		{"check count (check + checks)", len(c.Checks), 2},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}

	web := c.Services[0]
	wantWeb := ServiceDefinition{
		ID: "web-1", Name: "web", Tags: []string{"primary", "v2"}, Address: "10.0.0.5", Port: 8080,
		Meta: map[string]string{"version": "2.1"}, Weights: Weights{Passing: 10, Warning: 1}, EnableTagOverride: true,
		Check: &CheckDefinition{
			ID: "service:web-1", Name: "Service 'web' check", ServiceID: "web-1", Status: StatusCritical,
			HTTP: "http://localhost:8080/health", Method: "GET", Header: map[string][]string{"X-Probe": {"cairn"}},
			TLSSkipVerify: true, Interval: Duration(10 * time.Second), Timeout: Duration(time.Second),
			DeregisterCriticalServiceAfter: Duration(90 * time.Minute),
		},
	}
	if !reflect.DeepEqual(web, wantWeb) {
		t.Errorf("service web =\n%#v\nwant\n%#v", web, wantWeb)
	}
	db := c.Services[1]
	if db.ID != "db" || db.Weights != (Weights{1, 1}) || len(db.Checks) != 2 {
		t.Fatalf("service db = %+v", db)
	}
	if got := []string{db.Checks[0].ID, db.Checks[1].ID}; !reflect.DeepEqual(got, []string{"service:db:1", "service:db:2"}) {
		t.Errorf("db check IDs = %v", got)
	}
	if db.Checks[0].Kind() != CheckTCP || db.Checks[1].Kind() != CheckScript || db.Checks[1].Status != StatusPassing {
		t.Errorf("db checks = %+v", db.Checks)
	}
	if m := c.Checks[0]; m.ID != "mem" || m.Name != "Memory" || m.TTL != Duration(30*time.Second) || m.Notes != "pushed by cron" || m.Status != StatusCritical {
		t.Errorf("check mem = %+v", m)
	}
	if w := c.Checks[1]; w.ID != "web-ttl" || w.ServiceID != "web-1" {
		t.Errorf("check web-ttl = %+v", w)
	}
}

// TestLoadBad loads each testdata/bad/*.json and *.hcl alone and compares
// the error with the golden .err file ({file} stands for the file's path).
func TestLoadBad(t *testing.T) {
	var files []string
	for _, pat := range []string{"testdata/bad/*.json", "testdata/bad/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no bad files")
	}
	for _, f := range files {
		ext := filepath.Ext(f)
		name := strings.TrimSuffix(filepath.Base(f), ext)
		golden := strings.TrimSuffix(f, ext) + ".err"
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, name+ext)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			c, loadErr := Load([]string{dir}, nil)
			if loadErr == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if c != nil {
				t.Fatal("Load returned a config together with an error")
			}
			if *update {
				got := strings.ReplaceAll(loadErr.Error(), path, "{file}") + "\n"
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantB, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(strings.TrimSpace(string(wantB)), "{file}", path)
			if loadErr.Error() != want {
				t.Fatalf("error\n got %s\nwant %s", loadErr, want)
			}
		})
	}
}

func TestLoadMergeOrder(t *testing.T) {
	c, err := Load([]string{"testdata/merge"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"scalar from first file kept", c.Datacenter, "dc2"},
		{"scalar overridden by later file", c.LogLevel, "error"},
		{"retry_join appends", c.RetryJoin, []string{"10.0.0.1", "10.0.0.2"}},
		{"recursors append", c.Recursors, []string{"8.8.8.8:53", "8.8.4.4:53"}},
		{"maps merge key by key", c.NodeMeta, map[string]string{"rack": "b", "zone": "z1"}},
		{"struct fields merge", c.Ports, Ports{DNS: 8601, HTTP: 8501, Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTPS: PortDisabled}},
		{"nested override", c.DNSConfig.NodeTTL.Duration(), 20 * time.Second},
		{"nested kept", c.DNSConfig.UDPAnswerLimit, 4},
		{"nested default kept", c.DNSConfig.AllowStale, true},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	var names []string
	for _, s := range c.Services {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"web", "api"}) {
		t.Errorf("services = %v, want [web api] (files in lexical order, appended)", names)
	}
}

func TestLoadDirsInOrder(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write(t, a, "z.json", `{"datacenter": "from-a", "recursors": ["10.0.0.1"]}`)
	write(t, b, "a.json", `{"datacenter": "from-b", "recursors": ["10.0.0.2"]}`)
	c, err := Load([]string{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Datacenter != "from-b" || !reflect.DeepEqual(c.Recursors, []string{"10.0.0.1:53", "10.0.0.2:53"}) {
		t.Fatalf("dc=%q recursors=%v: later dir must win and lists append in dir order", c.Datacenter, c.Recursors)
	}
	// A path naming a file loads that file.
	c, err = Load([]string{filepath.Join(a, "z.json")}, nil)
	if err != nil || c.Datacenter != "from-a" {
		t.Fatalf("load single file: %v, %+v", err, c)
	}
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagsOverFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.json", `{"log_level": "debug", "ports": {"dns": 8653}, "recursors": ["1.1.1.1"], "server": true, "data_dir": "/d"}`)
	c, err := Load([]string{dir}, func(c *Config) {
		c.LogLevel = "error"
		c.Ports.DNS = 53
		c.Recursors = append(c.Recursors, "9.9.9.9")
		c.Domain = "Example"
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "error" || c.Ports.DNS != 53 || c.Domain != "example." {
		t.Errorf("flags did not win: log=%q dns=%d domain=%q", c.LogLevel, c.Ports.DNS, c.Domain)
	}
	if !reflect.DeepEqual(c.Recursors, []string{"1.1.1.1:53", "9.9.9.9:53"}) {
		t.Errorf("recursors = %v", c.Recursors)
	}
	if !c.Server || c.DataDir != "/d" {
		t.Errorf("file values not set by flags were lost: %+v", c)
	}
	// Flags are validated too.
	if _, err := Load([]string{dir}, func(c *Config) { c.Ports.HTTP = 70000 }); err == nil || err.Error() != "config: ports.http: 70000 is not in 0..65535 (-1 disables it)" {
		t.Errorf("bad flag: err = %v", err)
	}
}

func TestLoadDevMode(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.json", `{"data_dir": "/var/lib/cairn", "disable_remote_exec": false}`)
	c, err := Load([]string{dir}, func(c *Config) { c.Dev = true })
	if err != nil {
		t.Fatal(err)
	}
	if !c.Server || c.BootstrapExpect != 1 || c.DataDir != "" || c.BindAddr != "127.0.0.1" || c.AdvertiseAddr != "127.0.0.1" {
		t.Errorf("dev adjustments missing: %+v", c)
	}
	if c.DisableRemoteExec {
		t.Error("dev changed disable_remote_exec")
	}
	if c.NodeName == "" {
		t.Error("dev left node_name empty")
	}
	// An explicit bind address survives --dev.
	c, err = Load(nil, func(c *Config) { c.Dev, c.BindAddr = true, "127.0.0.2" })
	if err != nil || c.BindAddr != "127.0.0.2" || c.AdvertiseAddr != "127.0.0.2" {
		t.Fatalf("dev with --bind: %v, bind=%q advertise=%q", err, c.BindAddr, c.AdvertiseAddr)
	}
}

func TestLoadDirErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Load([]string{missing}, nil); err == nil || !strings.Contains(err.Error(), "config: config dir "+missing) {
		t.Fatalf("missing dir: err = %v, want it named", err)
	}
	// A bad file after a good one: nothing half-applied, no config returned.
	dir := t.TempDir()
	write(t, dir, "a.json", `{"datacenter": "ok"}`)
	bad := write(t, dir, "b.json", `{"datacenter": "x", "dns_config": {"only_pasing": true}}`)
	c, err := Load([]string{dir}, nil)
	if c != nil || err == nil || err.Error() != "config: "+bad+":1: dns_config.only_pasing: unknown key (did you mean \"only_passing\"?)" {
		t.Fatalf("Load = %v, %v", c, err)
	}
}

func TestMergeFileLeavesConfigOnError(t *testing.T) {
	c := DefaultConfig()
	if _, err := c.mergeFile("a.json", []byte(`{"node_meta": {"a": "1"}, "retry_join": ["x"]}`)); err != nil {
		t.Fatal(err)
	}
	before := *c
	before.NodeMeta = map[string]string{"a": "1"}
	_, err := c.mergeFile("b.json", []byte(`{"datacenter": "changed", "node_meta": {"b": "2"}, "retry_join": ["y"], "ports": {"dns": "x"}}`))
	if err == nil {
		t.Fatal("bad file merged")
	}
	if !reflect.DeepEqual(*c, before) {
		t.Fatalf("config changed by a failed merge:\n got %+v\nwant %+v", *c, before)
	}
}

func TestAdvertiseDefault(t *testing.T) {
	if got := defaultAdvertise("10.1.2.3"); got != "10.1.2.3" {
		t.Errorf("specific bind: advertise = %q", got)
	}
	for _, bind := range []string{"0.0.0.0", "::"} {
		got := net.ParseIP(defaultAdvertise(bind))
		if got == nil || got.To4() == nil || !(got.IsPrivate() || got.Equal(net.IPv4(127, 0, 0, 1))) {
			t.Errorf("bind %s: advertise %v is not a private IPv4 or 127.0.0.1", bind, got)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(struct{ D Duration }{Duration(90 * time.Second)})
	if err != nil || string(b) != `{"D":"1m30s"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var v struct{ D Duration }
	if err := json.Unmarshal(b, &v); err != nil || v.D != Duration(90*time.Second) {
		t.Fatalf("unmarshal = %v, %v", v.D, err)
	}
}

// TestPortsAny: 0 asks the kernel for a port, for every listener at once
// (no clash among them), which is how tests start agents.
func TestPortsAny(t *testing.T) {
	c, err := Load(nil, func(c *Config) {
		c.Ports = Ports{DNS: PortAny, HTTP: PortAny, Server: PortAny, SerfLAN: PortAny, SerfWAN: PortAny, HTTPS: PortDisabled}
	})
	if err != nil {
		t.Fatalf("all ports 0: %v", err)
	}
	if c.Ports != (Ports{HTTPS: PortDisabled}) {
		t.Errorf("ports = %+v, want all 0", c.Ports)
	}
}
