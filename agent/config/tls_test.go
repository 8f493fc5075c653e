package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnd/cairn/cluster/tlsconf"
)

// TestLoadTLSFiles loads the legacy keys, then a tls block over them.
func TestLoadTLSFiles(t *testing.T) {
	c, err := Load([]string{"testdata/tls"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := tlsconf.Config{
		CAFile:               "/etc/cairn/cairn-agent-ca.pem",
		CertFile:             "/etc/cairn/dc1-server-cairn-0.pem",
		KeyFile:              "/etc/cairn/dc1-server-cairn-0-key.pem",
		VerifyIncoming:       true, // legacy, not overridden
		VerifyOutgoing:       true,
		VerifyServerHostname: true,
		Datacenter:           "dc1",
		Domain:               "consul",
	}
	if got := c.TLSConfig(); got != want {
		t.Fatalf("TLSConfig\n got %+v\nwant %+v", got, want)
	}
}

func TestTLSConfigMapping(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want tlsconf.Config
	}{
		{"none", `{}`, tlsconf.Config{}},
		{"legacy", `{"ca_file":"ca","ca_path":"cas","cert_file":"c","key_file":"k","verify_incoming":true,"verify_outgoing":true,"verify_server_hostname":true}`,
			tlsconf.Config{CAFile: "ca", CAPath: "cas", CertFile: "c", KeyFile: "k", VerifyIncoming: true, VerifyOutgoing: true, VerifyServerHostname: true}},
		{"defaults", `{"tls":{"defaults":{"ca_file":"ca","cert_file":"c","key_file":"k","verify_incoming":true,"verify_outgoing":true}}}`,
			tlsconf.Config{CAFile: "ca", CertFile: "c", KeyFile: "k", VerifyIncoming: true, VerifyOutgoing: true}},
		{"internal_rpc overrides defaults", `{"tls":{"defaults":{"ca_file":"ca","verify_incoming":true,"verify_outgoing":true},"internal_rpc":{"ca_file":"rpc-ca","verify_incoming":false,"verify_server_hostname":true}}}`,
			tlsconf.Config{CAFile: "rpc-ca", VerifyOutgoing: true, VerifyServerHostname: true}},
		{"tls block beats legacy", `{"verify_outgoing":true,"ca_file":"old","tls":{"defaults":{"verify_outgoing":false,"ca_file":"new"}}}`,
			tlsconf.Config{CAFile: "new"}},
		{"CamelCase keys", `{"TLS":{"Defaults":{"CAFile":"ca","VerifyOutgoing":true},"InternalRPC":{"VerifyServerHostname":true}}}`,
			tlsconf.Config{CAFile: "ca", VerifyOutgoing: true, VerifyServerHostname: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if _, err := c.mergeFile("tls.json", []byte(tc.json)); err != nil {
				t.Fatal(err)
			}
			got := c.TLSConfig()
			tc.want.Datacenter, tc.want.Domain = "dc1", "consul"
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestTLSBadFileChangesNothing: a file that fails to decode after setting
// a TLS boolean must not write through to the running configuration.
func TestTLSBadFileChangesNothing(t *testing.T) {
	c := DefaultConfig()
	if _, err := c.mergeFile("tls.json", []byte(`{"verify_incoming":false,"tls":{"defaults":{"verify_outgoing":false}}}`)); err != nil {
		t.Fatal(err)
	}
	before := c.TLSConfig()
	if _, err := c.mergeFile("tls.json", []byte(`{"verify_incoming":true,"tls":{"defaults":{"verify_outgoing":true}},"bogus":1}`)); err == nil {
		t.Fatal("bad file accepted")
	}
	if after := c.TLSConfig(); after != before {
		t.Fatalf("bad file changed TLS settings: %+v -> %+v", before, after)
	}
}

func TestTLSReloadedFromDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tls.json"), []byte(`{"tls":{"defaults":{"ca_file":"a.pem","verify_outgoing":true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Fixed().TLSConfig(); f.CAFile != "a.pem" || !f.VerifyOutgoing {
		t.Fatalf("Fixed() lost the TLS settings: %+v", f)
	}
}

// TestHTTPSConfig: tls.https overlays tls.defaults for the HTTPS listener
// only, and ports.https refuses to start without a certificate.
func TestHTTPSConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		want    tlsconf.Config
		wantErr string
	}{
		{"https overrides defaults", `{"ports":{"https":8501},"tls":{"defaults":{"ca_file":"ca","cert_file":"c","key_file":"k","verify_incoming":true,"verify_outgoing":true},"https":{"verify_incoming":false,"cert_file":"hc","key_file":"hk"}}}`,
			tlsconf.Config{CAFile: "ca", CertFile: "hc", KeyFile: "hk"}, ""},
		{"legacy keys reach https", `{"ports":{"https":8501},"ca_file":"ca","cert_file":"c","key_file":"k","verify_incoming":true}`,
			tlsconf.Config{CAFile: "ca", CertFile: "c", KeyFile: "k", VerifyIncoming: true}, ""},
		{"no certificate", `{"ports":{"https":8501},"tls":{"defaults":{"ca_file":"ca"}}}`,
			tlsconf.Config{}, "ports.https: needs tls.https (or tls.defaults) cert_file and key_file"},
		{"verify_incoming without a CA", `{"ports":{"https":8501},"tls":{"https":{"cert_file":"c","key_file":"k","verify_incoming":true}}}`,
			tlsconf.Config{}, "ports.https: tls.defaults.verify_incoming: needs ca_file or ca_path"},
		{"https port clash", `{"ports":{"https":8500},"tls":{"https":{"cert_file":"c","key_file":"k"}}}`,
			tlsconf.Config{}, "ports.https: 8500 is already used by ports.http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if _, err := c.mergeFile("https.json", []byte(tc.json)); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || err.Error() != "config: "+tc.wantErr && err.Error() != tc.wantErr {
					t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.HTTPSConfig()
			tc.want.Datacenter, tc.want.Domain = "dc1", "consul"
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if c.Ports.HTTPS != 8501 {
				t.Fatalf("ports.https = %d", c.Ports.HTTPS)
			}
		})
	}
	if DefaultConfig().Ports.HTTPS != PortDisabled {
		t.Fatal("HTTPS must be off by default, as in Consul")
	}
}
