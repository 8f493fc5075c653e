package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Config is the TLS part of an agent's settings, in Consul's terms.
type Config struct {
	CAFile   string // PEM bundle of trusted CAs
	CAPath   string // directory of PEM CA files (read in addition to CAFile)
	CertFile string // this agent's certificate (PEM)
	KeyFile  string // its key (PEM)

	// VerifyIncoming refuses plain connections on the server port and
	// requires TLS peers to present a certificate signed by the CA.
	VerifyIncoming bool
	// VerifyOutgoing makes this agent dial servers with TLS and verify
	// their certificate against the CA.
	VerifyOutgoing bool
	// VerifyServerHostname additionally requires a server's certificate to
	// name server.<dc>.<domain>; it implies VerifyOutgoing, as in Consul.
	VerifyServerHostname bool

	Datacenter string // this agent's; the name checked for local servers
	Domain     string // default "consul"
}

// Enabled reports whether any TLS setting is present.
func (c Config) Enabled() bool {
	return c.CAFile != "" || c.CAPath != "" || c.CertFile != "" || c.KeyFile != "" ||
		c.VerifyIncoming || c.VerifyOutgoing || c.VerifyServerHostname
}

// Validate checks that the settings are usable together, naming the key at
// fault, as Consul's config builder does.
func (c Config) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		if c.CertFile == "" {
			return errors.New("tls.defaults.cert_file: required when key_file is set")
		}
		return errors.New("tls.defaults.key_file: required when cert_file is set")
	}
	hasCA := c.CAFile != "" || c.CAPath != ""
	if c.VerifyIncoming {
		if !hasCA {
			return errors.New("tls.defaults.verify_incoming: needs ca_file or ca_path")
		}
		if c.CertFile == "" {
			return errors.New("tls.defaults.verify_incoming: needs cert_file and key_file")
		}
	}
	if (c.VerifyOutgoing || c.VerifyServerHostname) && !hasCA {
		if c.VerifyServerHostname {
			return errors.New("tls.internal_rpc.verify_server_hostname: needs ca_file or ca_path")
		}
		return errors.New("tls.defaults.verify_outgoing: needs ca_file or ca_path")
	}
	return nil
}

// material is one loaded generation of certificates; it is immutable once
// published.
type material struct {
	cfg    Config
	cert   *tls.Certificate // nil without cert_file
	pool   *x509.CertPool   // nil without a CA
	server *tls.Config      // nil without cert: the listener speaks no TLS
}

// Configurator hands out TLS configurations for the server port. Safe for
// concurrent use; Reload swaps everything at once.
type Configurator struct {
	cur atomic.Pointer[material]
}

// New loads cfg's files. It fails if cfg is invalid or a file cannot be
// read or parsed.
func New(cfg Config) (*Configurator, error) {
	c := &Configurator{}
	if err := c.Reload(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload loads cfg's files and, only if all of them are good, makes them
// the ones used for new connections.
func (c *Configurator) Reload(cfg Config) error {
	if cfg.VerifyServerHostname {
		cfg.VerifyOutgoing = true
	}
	cfg.Domain = trimDot(cfg.Domain)
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &material{cfg: cfg}
	if cfg.CAFile != "" || cfg.CAPath != "" {
		pool, err := loadPool(cfg.CAFile, cfg.CAPath)
		if err != nil {
			return err
		}
		m.pool = pool
	}
	if cfg.CertFile != "" {
		certPEM, err := os.ReadFile(cfg.CertFile)
		if err != nil {
			return fmt.Errorf("tls.defaults.cert_file: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("tls.defaults.key_file: %w", err)
		}
		cert, err := loadPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("tls.defaults.cert_file %s: %w", cfg.CertFile, err)
		}
		m.cert = cert
		m.server = c.serverConfig(m)
	}
	c.cur.Store(m)
	return nil
}

func loadPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// LoadCAs reads a PEM bundle and/or a directory of .pem/.crt files into a
// pool (the CLI's --ca-file/--ca-path use it too).
func LoadCAs(file, dir string) (*x509.CertPool, error) { return loadPool(file, dir) }

func loadPool(file, dir string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	add := func(key, p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: %s holds no PEM certificate", key, p)
		}
		return nil
	}
	if file != "" {
		if err := add("tls.defaults.ca_file", file); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("tls.defaults.ca_path: %w", err)
		}
		n := 0
		for _, e := range entries {
			if e.IsDir() || (filepath.Ext(e.Name()) != ".pem" && filepath.Ext(e.Name()) != ".crt") {
				continue
			}
			if err := add("tls.defaults.ca_path", filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("tls.defaults.ca_path: no .pem or .crt file in %s", dir)
		}
	}
	return pool, nil
}

// minVersion: TLS 1.2 is the floor the issue sets; Go negotiates 1.3
// whenever the peer offers it.
const minVersion = tls.VersionTLS12

func (c *Configurator) serverConfig(m *material) *tls.Config {
	cfg := &tls.Config{
		MinVersion: minVersion,
		// Read at handshake time so a Reload reaches new connections even
		// through a *tls.Config someone kept.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cur := c.cur.Load(); cur.cert != nil {
				return cur.cert, nil
			}
			return nil, errors.New("tls: no certificate configured")
		},
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur := c.cur.Load()
		out := cfg.Clone()
		out.GetConfigForClient = nil
		out.ClientCAs = cur.pool
		switch {
		case cur.cfg.VerifyIncoming:
			out.ClientAuth = tls.RequireAndVerifyClientCert
		case cur.pool != nil:
			// A certificate offered anyway must still be good.
			out.ClientAuth = tls.VerifyClientCertIfGiven
		default:
			out.ClientAuth = tls.NoClientCert
		}
		return out, nil
	}
	return cfg
}

// IncomingTLS is the listener's configuration, or nil when no certificate
// is configured (the port then speaks only plain protocols).
func (c *Configurator) IncomingTLS() *tls.Config {
	return c.cur.Load().server
}

// VerifyIncoming reports whether plain connections must be refused.
func (c *Configurator) VerifyIncoming() bool { return c.cur.Load().cfg.VerifyIncoming }

// OutgoingTLS is the configuration to dial a server of datacenter dc with
// ("" means this agent's), or nil when verify_outgoing is off.
func (c *Configurator) OutgoingTLS(dc string) *tls.Config {
	m := c.cur.Load()
	if !m.cfg.VerifyOutgoing {
		return nil
	}
	if dc == "" {
		dc = m.cfg.Datacenter
	}
	cfg := &tls.Config{
		MinVersion: minVersion,
		RootCAs:    m.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cur := c.cur.Load(); cur.cert != nil {
				return cur.cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
	if m.cfg.VerifyServerHostname {
		cfg.ServerName = ServerName(dc, m.cfg.Domain)
		return cfg
	}
	// verify_outgoing alone checks the chain but not the name, as Consul:
	// Go's own verification always checks a name, so do the chain here.
	pool := m.pool
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		return err
	}
	return cfg
}

// RaftPeerName is the name a Raft peer's certificate must carry under
// verify_server_hostname (server.<dc>.<domain>), or "" otherwise.
func (c *Configurator) RaftPeerName() string {
	m := c.cur.Load()
	if !m.cfg.VerifyServerHostname {
		return ""
	}
	return ServerName(m.cfg.Datacenter, m.cfg.Domain)
}
