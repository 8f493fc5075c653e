package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	// DefaultCADays is how long a CA is valid, as Consul's (about 5 years).
	DefaultCADays = 1825
	// DefaultCertDays is how long an agent certificate is valid, as Consul's.
	DefaultCertDays = 365
	// FilePrefix replaces Consul's "consul" in generated file names.
	FilePrefix = "cairn"
	// maxCounter bounds the search for a free file name, so a directory
	// full of certificates cannot make the command loop for long.
	maxCounter = 100000
)

// Kind is what a certificate is for.
type Kind string

const (
	KindServer Kind = "server"
	KindClient Kind = "client"
	KindCLI    Kind = "cli"
)

// CAOptions tune GenerateCA. Zero values take defaults.
type CAOptions struct {
	Days       int
	CommonName string // default "Cairn Agent CA <serial>"
	Now        time.Time
}

// CertOptions tune GenerateCert.
type CertOptions struct {
	Kind       Kind
	Datacenter string // required
	Domain     string // default "consul"
	Days       int
	DNSNames   []string // added to the defaults
	IPs        []net.IP // added to 127.0.0.1
	Now        time.Time
}

// CAFiles are the default file names of a CA and its key.
func CAFiles() (cert, key string) {
	return FilePrefix + "-agent-ca.pem", FilePrefix + "-agent-ca-key.pem"
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// GenerateCA creates a self-signed CA certificate and its key, PEM encoded.
func GenerateCA(o CAOptions) (certPEM, keyPEM []byte, err error) {
	if o.Days <= 0 {
		o.Days = DefaultCADays
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: ca key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	if o.CommonName == "" {
		o.CommonName = fmt.Sprintf("Cairn Agent CA %s", sn.String())
	}
	id, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"Cairn"}},
		NotBefore:             o.Now.Add(-time.Minute), // tolerate small clock skew
		NotAfter:              o.Now.AddDate(0, 0, o.Days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          id,
		AuthorityKeyId:        id,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: create ca: %w", err)
	}
	return encode(der, key)
}

// ParseCA reads a CA certificate and key as GenerateCA writes them.
func ParseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, nil, errors.New("tlsconf: ca certificate: no CERTIFICATE PEM block")
	}
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: ca certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, nil, errors.New("tlsconf: ca certificate is not a CA")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("tlsconf: ca key: no PEM block")
	}
	var signer crypto.Signer
	switch kb.Type {
	case "EC PRIVATE KEY":
		signer, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		var k any
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err == nil {
			var ok bool
			if signer, ok = k.(crypto.Signer); !ok {
				err = fmt.Errorf("unsupported key type %T", k)
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: ca key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: ca key: %w", err)
	}
	capub, err := x509.MarshalPKIXPublicKey(ca.PublicKey)
	if err != nil || string(pub) != string(capub) {
		return nil, nil, errors.New("tlsconf: ca key does not match the ca certificate")
	}
	return ca, signer, nil
}

// Names returns the DNS names a certificate of kind carries by default:
// <kind>.<dc>.<domain> and localhost.
func Names(kind Kind, dc, domain string) []string {
	return []string{fmt.Sprintf("%s.%s.%s", kind, dc, domain), "localhost"}
}

// ServerName is the name verify_server_hostname checks on a server's
// certificate.
func ServerName(dc, domain string) string {
	return fmt.Sprintf("server.%s.%s", dc, trimDot(domain))
}

func trimDot(d string) string {
	for len(d) > 0 && d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	if d == "" {
		return "consul"
	}
	return d
}

// GenerateCert creates a certificate of o.Kind signed by the CA.
func GenerateCert(o CertOptions, ca *x509.Certificate, caKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	switch o.Kind {
	case KindServer, KindClient, KindCLI:
	default:
		return nil, nil, fmt.Errorf("tlsconf: certificate kind %q: want server, client or cli", o.Kind)
	}
	if o.Datacenter == "" {
		return nil, nil, errors.New("tlsconf: datacenter is required")
	}
	o.Domain = trimDot(o.Domain)
	if o.Days <= 0 {
		o.Days = DefaultCertDays
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	id, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	names := append(Names(o.Kind, o.Datacenter, o.Domain), o.DNSNames...)
	ips := append([]net.IP{net.IPv4(127, 0, 0, 1)}, o.IPs...)
	ext := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if o.Kind == KindCLI {
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             o.Now.Add(-time.Minute),
		NotAfter:              o.Now.AddDate(0, 0, o.Days),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           ext,
		DNSNames:              names,
		IPAddresses:           ips,
		SubjectKeyId:          id,
		AuthorityKeyId:        ca.SubjectKeyId,
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		// A certificate outliving its CA would fail verification anyway.
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: create certificate: %w", err)
	}
	return encode(der, key)
}

// CertFiles returns the first free pair of file names in dir for a
// certificate of kind in dc: <dc>-<kind>-cairn-<n>.pem and -key.pem, with
// n counting up from 0 past files that exist, as Consul names them.
func CertFiles(dir string, kind Kind, dc string) (cert, key string, err error) {
	for n := 0; n < maxCounter; n++ {
		base := fmt.Sprintf("%s-%s-%s-%d", dc, kind, FilePrefix, n)
		cert, key = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem")
		if !exists(cert) && !exists(key) {
			return cert, key, nil
		}
	}
	return "", "", fmt.Errorf("tlsconf: no free file name for %s certificates in %s", kind, dir)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// WriteNew writes data to path, failing if the file exists; keys are
// written 0600.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
