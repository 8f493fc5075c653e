package config

import (
	"strings"

	"github.com/cairnd/cairn/cluster/tlsconf"
)

// TLS is Consul's tls block (1.12 and later): defaults, internal_rpc (the
// server port) and https (the API's TLS port, ports.https). grpc is not
// accepted, so a file using it fails loudly rather than being silently
// insecure.
type TLS struct {
	Defaults    TLSDefaults    `json:"defaults"`
	InternalRPC TLSInternalRPC `json:"internal_rpc"`
	HTTPS       TLSDefaults    `json:"https"`
}

// TLSDefaults are the settings every TLS protocol inherits. Booleans are
// pointers so that a block which does not mention a key leaves the
// inherited value alone (internal_rpc over defaults over the legacy keys).
type TLSDefaults struct {
	CAFile         string `json:"ca_file"`
	CAPath         string `json:"ca_path"`
	CertFile       string `json:"cert_file"`
	KeyFile        string `json:"key_file"`
	VerifyIncoming *bool  `json:"verify_incoming"`
	VerifyOutgoing *bool  `json:"verify_outgoing"`
}

// TLSInternalRPC is tls.internal_rpc: the server port (RPC, Raft, the
// forwarder). It overrides tls.defaults key by key.
type TLSInternalRPC struct {
	TLSDefaults
	VerifyServerHostname *bool `json:"verify_server_hostname"`
}

// LegacyTLS are Consul's pre-1.12 top-level keys, still accepted. The tls
// block wins where both set a key.
type LegacyTLS struct {
	CAFile               string `json:"ca_file"`
	CAPath               string `json:"ca_path"`
	CertFile             string `json:"cert_file"`
	KeyFile              string `json:"key_file"`
	VerifyIncoming       *bool  `json:"verify_incoming"`
	VerifyOutgoing       *bool  `json:"verify_outgoing"`
	VerifyServerHostname *bool  `json:"verify_server_hostname"`
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// cloneTLS gives c fresh copies of its TLS pointers, so decoding a file
// into a copy of c never writes through to c (a bad file changes nothing).
func (c *Config) cloneTLS() {
	l := &c.LegacyTLS
	l.VerifyIncoming, l.VerifyOutgoing, l.VerifyServerHostname = cloneBool(l.VerifyIncoming), cloneBool(l.VerifyOutgoing), cloneBool(l.VerifyServerHostname)
	for _, d := range []*TLSDefaults{&c.TLS.Defaults, &c.TLS.InternalRPC.TLSDefaults, &c.TLS.HTTPS} {
		d.VerifyIncoming, d.VerifyOutgoing = cloneBool(d.VerifyIncoming), cloneBool(d.VerifyOutgoing)
	}
	c.TLS.InternalRPC.VerifyServerHostname = cloneBool(c.TLS.InternalRPC.VerifyServerHostname)
}

// TLSConfig resolves the legacy keys, tls.defaults and tls.internal_rpc
// (later wins, key by key) into the server port's TLS settings.
func (c *Config) TLSConfig() tlsconf.Config {
	out := c.tlsBase()
	overlayTLS(&out, c.TLS.InternalRPC.TLSDefaults)
	if v := c.TLS.InternalRPC.VerifyServerHostname; v != nil {
		out.VerifyServerHostname = *v
	}
	return out
}

// HTTPSConfig resolves the legacy keys, tls.defaults and tls.https into the
// HTTPS listener's settings. As in Consul, verify_incoming there requires
// API clients to present a certificate signed by the CA; the outgoing and
// hostname keys mean nothing to a listener and are dropped.
func (c *Config) HTTPSConfig() tlsconf.Config {
	out := c.tlsBase()
	overlayTLS(&out, c.TLS.HTTPS)
	out.VerifyOutgoing, out.VerifyServerHostname = false, false
	return out
}

// tlsBase is the legacy keys overlaid by tls.defaults.
func (c *Config) tlsBase() tlsconf.Config {
	l := c.LegacyTLS
	out := tlsconf.Config{
		CAFile: l.CAFile, CAPath: l.CAPath, CertFile: l.CertFile, KeyFile: l.KeyFile,
		VerifyIncoming:       l.VerifyIncoming != nil && *l.VerifyIncoming,
		VerifyOutgoing:       l.VerifyOutgoing != nil && *l.VerifyOutgoing,
		VerifyServerHostname: l.VerifyServerHostname != nil && *l.VerifyServerHostname,
		Datacenter:           c.Datacenter,
		Domain:               strings.TrimSuffix(c.Domain, "."),
	}
	overlayTLS(&out, c.TLS.Defaults)
	return out
}

// overlayTLS sets in out every key d mentions.
func overlayTLS(out *tlsconf.Config, d TLSDefaults) {
	setStr := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setStr(&out.CAFile, d.CAFile)
	setStr(&out.CAPath, d.CAPath)
	setStr(&out.CertFile, d.CertFile)
	setStr(&out.KeyFile, d.KeyFile)
	if d.VerifyIncoming != nil {
		out.VerifyIncoming = *d.VerifyIncoming
	}
	if d.VerifyOutgoing != nil {
		out.VerifyOutgoing = *d.VerifyOutgoing
	}
}
