package tlsconftest

import (
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnd/cairn/cluster/tlsconf"
)

// CA is a test CA whose files live in Dir.
type CA struct {
	Dir      string
	CertFile string
	KeyFile  string
	cert     *x509.Certificate
	key      crypto.Signer
}

// Files are one certificate's files.
type Files struct {
	CertFile, KeyFile string
}

// NewCA creates a CA under a new directory in t.TempDir().
func NewCA(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := tlsconf.GenerateCA(tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := tlsconf.CAFiles()
	ca := &CA{Dir: dir, CertFile: filepath.Join(dir, cf), KeyFile: filepath.Join(dir, kf)}
	if err := os.WriteFile(ca.CertFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if ca.cert, ca.key, err = tlsconf.ParseCA(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return ca
}

// Cert writes a new certificate of kind for dc (domain "consul") signed by
// the CA, named as `cairn tls cert create` names it.
func (ca *CA) Cert(t testing.TB, kind tlsconf.Kind, dc string) Files {
	t.Helper()
	certPEM, keyPEM, err := tlsconf.GenerateCert(tlsconf.CertOptions{Kind: kind, Datacenter: dc, Domain: "consul"}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf, err := tlsconf.CertFiles(ca.Dir, kind, dc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return Files{CertFile: cf, KeyFile: kf}
}

// Config is a tlsconf.Config trusting this CA and presenting f.
func (ca *CA) Config(f Files, verifyIncoming, verifyOutgoing, verifyServerHostname bool) tlsconf.Config {
	return tlsconf.Config{
		CAFile: ca.CertFile, CertFile: f.CertFile, KeyFile: f.KeyFile,
		VerifyIncoming: verifyIncoming, VerifyOutgoing: verifyOutgoing, VerifyServerHostname: verifyServerHostname,
		Datacenter: "dc1", Domain: "consul",
	}
}
