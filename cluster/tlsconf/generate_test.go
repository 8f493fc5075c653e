package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("no CERTIFICATE block in %q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testCA returns a fresh CA (certificate PEM, key PEM).
func testCA(t *testing.T) ([]byte, []byte) {
	t.Helper()
	c, k, err := GenerateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestGenerateCA(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	certPEM, keyPEM, err := GenerateCA(CAOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, certPEM)
	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Fatal("CA certificate is not marked as a CA")
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA key usage %v lacks cert sign", ca.KeyUsage)
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if want := now.AddDate(0, 0, DefaultCADays); !ca.NotAfter.Equal(want) {
		t.Fatalf("NotAfter = %v, want %v", ca.NotAfter, want)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("CA is not self-signed: %v", err)
	}
	if _, _, err := ParseCA(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	_, otherKey := testCA(t)
	if _, _, err := ParseCA(certPEM, otherKey); err == nil {
		t.Fatal("ParseCA accepted a key of another CA")
	}
}

func TestGenerateCert(t *testing.T) {
	caPEM, caKeyPEM := testCA(t)
	ca, caKey, err := ParseCA(caPEM, caKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	now := time.Now()
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, tc := range []struct {
		kind  Kind
		dns   []string
		ips   []net.IP
		names []string
		ext   []x509.ExtKeyUsage
	}{
		{KindServer, nil, nil, []string{"server.dc1.consul", "localhost"}, both},
		{KindServer, []string{"s1.example.com"}, []net.IP{net.ParseIP("10.0.0.7")}, []string{"server.dc1.consul", "localhost", "s1.example.com"}, both},
		{KindClient, nil, nil, []string{"client.dc1.consul", "localhost"}, both},
		{KindCLI, nil, nil, []string{"cli.dc1.consul", "localhost"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			certPEM, keyPEM, err := GenerateCert(CertOptions{Kind: tc.kind, Datacenter: "dc1", Domain: "consul.", DNSNames: tc.dns, IPs: tc.ips, Now: now}, ca, caKey)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, certPEM)
			if !slices.Equal(c.DNSNames, tc.names) {
				t.Fatalf("DNS SANs = %v, want %v", c.DNSNames, tc.names)
			}
			wantIPs := append([]net.IP{net.IPv4(127, 0, 0, 1)}, tc.ips...)
			if len(c.IPAddresses) != len(wantIPs) {
				t.Fatalf("IP SANs = %v, want %v", c.IPAddresses, wantIPs)
			}
			for i := range wantIPs {
				if !c.IPAddresses[i].Equal(wantIPs[i]) {
					t.Fatalf("IP SANs = %v, want %v", c.IPAddresses, wantIPs)
				}
			}
			if !slices.Equal(c.ExtKeyUsage, tc.ext) {
				t.Fatalf("ext key usage = %v, want %v", c.ExtKeyUsage, tc.ext)
			}
			if c.IsCA {
				t.Fatal("leaf certificate is a CA")
			}
			if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Fatalf("key usage %v lacks digital signature", c.KeyUsage)
			}
			if got, want := c.NotAfter.Sub(now).Hours()/24, float64(DefaultCertDays); got < want-1 || got > want+1 {
				t.Fatalf("valid for %.1f days, want %v", got, want)
			}
			opts := x509.VerifyOptions{Roots: pool, KeyUsages: tc.ext, DNSName: tc.names[0]}
			if _, err := c.Verify(opts); err != nil {
				t.Fatalf("does not verify against its CA: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: x509.NewCertPool()}); err == nil {
				t.Fatal("verified against an empty pool")
			}
			if _, err := loadPair(certPEM, keyPEM); err != nil {
				t.Fatalf("key does not match certificate: %v", err)
			}
		})
	}
	if _, _, err := GenerateCert(CertOptions{Kind: "peer", Datacenter: "dc1"}, ca, caKey); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if _, _, err := GenerateCert(CertOptions{Kind: KindServer}, ca, caKey); err == nil {
		t.Fatal("missing datacenter accepted")
	}
}

func TestCertFilesCount(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{"dc1-server-cairn-0", "dc1-server-cairn-1", "dc1-server-cairn-2"} {
		c, k, err := CertFiles(dir, KindServer, "dc1")
		if err != nil {
			t.Fatal(err)
		}
		if c != filepath.Join(dir, want+".pem") || k != filepath.Join(dir, want+"-key.pem") {
			t.Fatalf("step %d: got %s %s, want %s", i, c, k, want)
		}
		if err := WriteNew(c, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(k, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(k, []byte("y"), 0o600); err == nil {
			t.Fatal("WriteNew overwrote an existing file")
		}
		if st, _ := os.Stat(k); st.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
		}
	}
	c, _, _ := CertFiles(dir, KindClient, "dc1")
	if filepath.Base(c) != "dc1-client-cairn-0.pem" {
		t.Fatalf("client file %s", c)
	}
}
