package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", p)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSCreateCommands(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := (&TLSCACreateCmd{Days: 1825, Dir: dir}).run(&out); err != nil {
		t.Fatal(err)
	}
	if err := (&TLSCACreateCmd{Days: 1825, Dir: dir}).run(&out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second ca create: %v, want a refusal to overwrite", err)
	}
	ca := readCert(t, filepath.Join(dir, "cairn-agent-ca.pem"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	create := func(c TLSCertCreateCmd) {
		t.Helper()
		c.DC, c.Domain, c.Days, c.Dir = "dc1", "consul", 365, dir
		if err := c.run(&out); err != nil {
			t.Fatal(err)
		}
	}
	create(TLSCertCreateCmd{Server: true, DNSNames: []string{"s1.example"}, IPs: []string{"10.1.2.3"}})
	create(TLSCertCreateCmd{Server: true})
	create(TLSCertCreateCmd{Client: true})
	create(TLSCertCreateCmd{CLI: true})
	for _, tc := range []struct {
		file, name string
	}{
		{"dc1-server-cairn-0.pem", "server.dc1.consul"},
		{"dc1-server-cairn-1.pem", "server.dc1.consul"},
		{"dc1-client-cairn-0.pem", "client.dc1.consul"},
		{"dc1-cli-cairn-0.pem", "cli.dc1.consul"},
	} {
		c := readCert(t, filepath.Join(dir, tc.file))
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(tc.file, ".pem")+"-key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	s0 := readCert(t, filepath.Join(dir, "dc1-server-cairn-0.pem"))
	if !slices.Contains(s0.DNSNames, "s1.example") || len(s0.IPAddresses) != 2 || s0.IPAddresses[1].String() != "10.1.2.3" {
		t.Fatalf("additional SANs missing: %v %v", s0.DNSNames, s0.IPAddresses)
	}
	if !strings.Contains(out.String(), "==> Saved "+filepath.Join(dir, "dc1-cli-cairn-0-key.pem")) {
		t.Fatalf("output lacks the saved file:\n%s", out.String())
	}

	for _, bad := range []TLSCertCreateCmd{
		{}, // no kind
		{Server: true, IPs: []string{"not-an-ip"}},
		{Client: true, CA: filepath.Join(dir, "missing.pem")},
	} {
		bad.DC, bad.Dir = "dc1", dir
		before, _ := os.ReadDir(dir)
		if err := bad.run(&out); err == nil {
			t.Fatalf("%+v: accepted", bad)
		}
		after, _ := os.ReadDir(dir)
		if len(before) != len(after) {
			t.Fatalf("%+v: a refused command wrote files", bad)
		}
	}
}

func TestTLSConsulFlags(t *testing.T) {
	got := consulArgs([]string{"tls", "cert", "create", "-server", "-dc", "dc2", "-additional-dnsname", "a.example"})
	want := []string{"tls", "cert", "create", "--server", "--dc", "dc2", "--additional-dnsname", "a.example"}
	if !slices.Equal(got, want) {
		t.Fatalf("consulArgs = %q, want %q", got, want)
	}
}
