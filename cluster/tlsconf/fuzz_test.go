package tlsconf

import "testing"

// FuzzParseCA: whatever bytes sit in the CA files, ParseCA returns an
// error or a CA whose key matches, and never panics.
func FuzzParseCA(f *testing.F) {
	c, k, err := GenerateCA(CAOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c, k)
	f.Add(c, c)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), k)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		ca, key, err := ParseCA(certPEM, keyPEM)
		if err != nil {
			return
		}
		if !ca.IsCA || key == nil {
			t.Fatalf("accepted a non-CA or nil key")
		}
	})
}
