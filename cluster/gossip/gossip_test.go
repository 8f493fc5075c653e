package gossip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/testutil"
)

func testPool(t *testing.T, name string, key string) *Pool {
	t.Helper()
	var raw []byte
	if key != "" {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(key); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(Config{
		NodeName: name, BindAddr: "127.0.0.1", BindPort: 0, AdvertiseAddr: "127.0.0.1",
		Tags: map[string]string{TagRole: RoleClient}, EncryptKey: raw, Fast: true,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // drain events as an owner must
		for {
			select {
			case <-done:
				return
			case <-p.Events():
			}
		}
	}()
	t.Cleanup(func() { p.Shutdown(); close(done) })
	return p
}

func addr(p *Pool) string {
	m := p.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// alive is the condition "p sees exactly n members alive".
func alive(p *Pool, n int) func() error {
	return func() error {
		got := 0
		for _, m := range p.Members() {
			if m.Status == serf.StatusAlive {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("want %d alive members, have %v", n, p.Members())
		}
		return nil
	}
}

func TestNewKey(t *testing.T) {
	k := NewKey()
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(b) != KeySize {
		t.Fatalf("NewKey() = %q (%d bytes, %v)", k, len(b), err)
	}
	if NewKey() == k {
		t.Fatal("two keys are equal")
	}
}

func TestJoinNeedsTheKey(t *testing.T) {
	key := NewKey()
	a := testPool(t, "a", key)
	for _, c := range []struct {
		name, key, want string
	}{
		{"nokey", "", "this agent needs its key (--encrypt)"},
		{"otherkey", NewKey(), "--encrypt must match the cluster's"},
	} {
		p := testPool(t, c.name, c.key)
		n, err := p.Join([]string{addr(a)})
		if err == nil || n != 0 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Join = %d, %v; want an error containing %q", c.name, n, err, c.want)
		}
	}
	b := testPool(t, "b", key)
	if n, err := b.Join([]string{addr(a)}); err != nil || n != 1 {
		t.Fatalf("join with the key: %d, %v", n, err)
	}
	testutil.Eventually(t, 10*time.Second, "two members alive", alive(a, 2))
}

func TestKeyringRotation(t *testing.T) {
	old := NewKey()
	a, b, c := testPool(t, "a", old), testPool(t, "b", old), testPool(t, "c", old)
	for _, p := range []*Pool{b, c} {
		if _, err := p.Join([]string{addr(a)}); err != nil {
			t.Fatal(err)
		}
	}
	// Every member must see the others before the rotation: a keyring
	// operation counts the members its sender knows, so an install sent
	// before b saw c's join reported 2/2 and c missed the key (then "use"
	// failed: c could not decrypt the new key's packets).
	for _, p := range []*Pool{a, b, c} {
		testutil.Eventually(t, 10*time.Second, "three members alive", alive(p, 3))
	}
	next := NewKey()
	for _, step := range []struct {
		op  KeyOp
		key string
	}{{KeyInstall, next}, {KeyUse, next}, {KeyRemove, old}} {
		if _, err := b.Keyring(step.op, step.key); err != nil {
			t.Fatalf("%s: %v", step.op, err)
		}
	}
	res, err := c.Keyring(KeyList, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 1 || res.Keys[next] != 3 || res.PrimaryKeys[next] != 3 || res.NumNodes != 3 {
		t.Fatalf("after rotation: %+v", res)
	}
	if _, err := a.Keyring(KeyRemove, next); err == nil {
		t.Fatal("removing the primary key succeeded")
	}
	if _, err := a.Keyring(KeyInstall, "not-base64!"); err == nil {
		t.Fatal("a bad key was accepted")
	}
	testutil.Eventually(t, 10*time.Second, "three members alive after rotation", alive(c, 3))
}

func TestKeyringNeedsEncryption(t *testing.T) {
	p := testPool(t, "plain", "")
	if _, err := p.Keyring(KeyList, ""); !errors.Is(err, ErrEncryptionDisabled) {
		t.Fatalf("Keyring on a plain pool: %v", err)
	}
}
