package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/cairnd/cairn/cluster/tlsconf"
)

// TLSCmd is `cairn tls`: create a CA and agent certificates, as
// `consul tls` does. Files are written to the current directory.
type TLSCmd struct {
	CA   TLSCACmd   `cmd:"" name:"ca" help:"Helpers for CAs."`
	Cert TLSCertCmd `cmd:"" name:"cert" help:"Helpers for certificates."`
}

// TLSCACmd groups `cairn tls ca …`.
type TLSCACmd struct {
	Create TLSCACreateCmd `cmd:"" help:"Create a self-signed CA (cairn-agent-ca.pem and its key)."`
}

// TLSCertCmd groups `cairn tls cert …`.
type TLSCertCmd struct {
	Create TLSCertCreateCmd `cmd:"" help:"Create a server, client or cli certificate signed by the CA."`
}

// TLSCACreateCmd is `cairn tls ca create`.
type TLSCACreateCmd struct {
	Days       int    `default:"1825" help:"Days the CA is valid for."`
	CommonName string `name:"common-name" help:"Common name of the CA (default: Cairn Agent CA <serial>)."`
	Dir        string `default:"." help:"Directory to write the files to."`
}

func (c *TLSCACreateCmd) Run(g *Globals) error { return c.run(g.stdout()) }

func (c *TLSCACreateCmd) run(stdout io.Writer) error {
	certName, keyName := tlsconf.CAFiles()
	certPath, keyPath := filepath.Join(c.Dir, certName), filepath.Join(c.Dir, keyName)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s: file exists; refusing to overwrite a CA", p)
		}
	}
	certPEM, keyPEM, err := tlsconf.GenerateCA(tlsconf.CAOptions{Days: c.Days, CommonName: c.CommonName})
	if err != nil {
		return err
	}
	if err := tlsconf.WriteNew(certPath, certPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", certPath)
	if err := tlsconf.WriteNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", keyPath)
	return nil
}

// TLSCertCreateCmd is `cairn tls cert create`.
type TLSCertCreateCmd struct {
	Server   bool     `help:"Generate a server certificate." xor:"kind"`
	Client   bool     `help:"Generate a client certificate." xor:"kind"`
	CLI      bool     `name:"cli" help:"Generate a cli certificate." xor:"kind"`
	DC       string   `name:"dc" default:"dc1" help:"Datacenter of the certificate."`
	Domain   string   `default:"consul" help:"Domain of the cluster."`
	Days     int      `default:"365" help:"Days the certificate is valid for."`
	CA       string   `name:"ca" help:"CA certificate file (default cairn-agent-ca.pem)."`
	Key      string   `help:"CA key file (default cairn-agent-ca-key.pem)."`
	DNSNames []string `name:"additional-dnsname" help:"Additional DNS name for the SAN (repeatable); localhost is always included."`
	IPs      []string `name:"additional-ipaddress" help:"Additional IP address for the SAN (repeatable); 127.0.0.1 is always included."`
	Dir      string   `default:"." help:"Directory to write the files to."`
}

func (c *TLSCertCreateCmd) Run(g *Globals) error { return c.run(g.stdout()) }

func (c *TLSCertCreateCmd) run(stdout io.Writer) error {
	var kind tlsconf.Kind
	switch {
	case c.Server:
		kind = tlsconf.KindServer
	case c.Client:
		kind = tlsconf.KindClient
	case c.CLI:
		kind = tlsconf.KindCLI
	default:
		return errors.New("please provide either -server, -client, or -cli")
	}
	ips := make([]net.IP, 0, len(c.IPs))
	for _, s := range c.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("-additional-ipaddress %q: not an IP address", s)
		}
		ips = append(ips, ip)
	}
	caName, caKeyName := tlsconf.CAFiles()
	if c.CA == "" {
		c.CA = filepath.Join(c.Dir, caName)
	}
	if c.Key == "" {
		c.Key = filepath.Join(c.Dir, caKeyName)
	}
	caPEM, err := os.ReadFile(c.CA)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	caKeyPEM, err := os.ReadFile(c.Key)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	ca, caKey, err := tlsconf.ParseCA(caPEM, caKeyPEM)
	if err != nil {
		return err
	}
	certPath, keyPath, err := tlsconf.CertFiles(c.Dir, kind, c.DC)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := tlsconf.GenerateCert(tlsconf.CertOptions{
		Kind: kind, Datacenter: c.DC, Domain: c.Domain, Days: c.Days, DNSNames: c.DNSNames, IPs: ips,
	}, ca, caKey)
	if err != nil {
		return err
	}
	if kind == tlsconf.KindServer {
		fmt.Fprint(stdout, `==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.
`)
	}
	fmt.Fprintf(stdout, "==> Using %s and %s\n", c.CA, c.Key)
	if err := tlsconf.WriteNew(certPath, certPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", certPath)
	if err := tlsconf.WriteNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "==> Saved %s\n", keyPath)
	return nil
}
