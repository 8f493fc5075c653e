package config

import (
	"strings"

	"github.com/cairnd/cairn/cluster/tlsconf"
)

// TLS is Consul's tls block (1.12 and later). Only the server port's
// protocols are wired (defaults and internal_rpc); https and grpc are not
// accepted yet, so a file using them fails loudly rather than being
// silently insecure.
type TLS struct {
	Defaults    TLSDefaults    `json:"defaults"`
	InternalRPC TLSInternalRPC `json:"internal_rpc"`
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
	for _, d := range []*TLSDefaults{&c.TLS.Defaults, &c.TLS.InternalRPC.TLSDefaults} {
		d.VerifyIncoming, d.VerifyOutgoing = cloneBool(d.VerifyIncoming), cloneBool(d.VerifyOutgoing)
	}
	c.TLS.InternalRPC.VerifyServerHostname = cloneBool(c.TLS.InternalRPC.VerifyServerHostname)
}

// TLSConfig resolves the legacy keys, tls.defaults and tls.internal_rpc
// (later wins, key by key) into the server port's TLS settings.
func (c *Config) TLSConfig() tlsconf.Config {
	l := c.LegacyTLS
	out := tlsconf.Config{
		CAFile: l.CAFile, CAPath: l.CAPath, CertFile: l.CertFile, KeyFile: l.KeyFile,
		VerifyIncoming:       l.VerifyIncoming != nil && *l.VerifyIncoming,
		VerifyOutgoing:       l.VerifyOutgoing != nil && *l.VerifyOutgoing,
		VerifyServerHostname: l.VerifyServerHostname != nil && *l.VerifyServerHostname,
		Datacenter:           c.Datacenter,
		Domain:               strings.TrimSuffix(c.Domain, "."),
	}
	overlay := func(d TLSDefaults) {
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
	overlay(c.TLS.Defaults)
	overlay(c.TLS.InternalRPC.TLSDefaults)
	if v := c.TLS.InternalRPC.VerifyServerHostname; v != nil {
		out.VerifyServerHostname = *v
	}
	return out
}
