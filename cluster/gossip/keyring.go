package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
)

// KeySize is the gossip key length: 32 bytes selects AES-256 in
// memberlist (16 and 24 are accepted too, as Consul does).
const KeySize = 32

// KeyOp is a keyring operation run across the whole pool.
type KeyOp string

// Keyring operations (Consul's names).
const (
	KeyList    KeyOp = "list"
	KeyInstall KeyOp = "install"
	KeyUse     KeyOp = "use"
	KeyRemove  KeyOp = "remove"
)

// ErrEncryptionDisabled is returned by keyring operations on a pool that
// was started without a key: memberlist cannot add a keyring later.
var ErrEncryptionDisabled = errors.New("gossip: keyring: gossip encryption is not enabled on this agent (start it with --encrypt)")

// KeyringResult is the answer of one pool to a keyring operation.
type KeyringResult struct {
	// Keys maps each base64 key to how many members have it installed;
	// PrimaryKeys maps each primary key to how many use it to encrypt.
	Keys        map[string]int
	PrimaryKeys map[string]int
	// NumNodes is how many members the pool knows; Messages has one entry
	// per member that answered with an error.
	NumNodes int
	Messages map[string]string
}

// keyringAttempts is how often an operation is sent when some member
// did not answer: serf's query timeout is short on small pools, and one
// lost response must not fail a rotation that every member applied.
const keyringAttempts = 3

// keyringRelay asks members to relay their answers through this many
// other members, so one dropped UDP packet does not lose an answer.
const keyringRelay = 2

// NewKey returns a fresh random gossip key, base64 encoded.
func NewKey() string {
	var b [KeySize]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Keyring runs op (with key for install/use/remove) on every member of
// the pool through serf's internal queries and gathers the answers. An
// error is returned when any member failed, with their messages.
func (p *Pool) Keyring(op KeyOp, key string) (*KeyringResult, error) {
	if !p.serf.EncryptionEnabled() {
		return nil, ErrEncryptionDisabled
	}
	if op != KeyList {
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: key is not base64: %w", err)
		}
		if n := len(b); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("gossip: keyring: key is %d bytes, want 16, 24 or 32", n)
		}
	}
	var (
		resp *serf.KeyResponse
		err  error
	)
	for attempt := 0; attempt < keyringAttempts; attempt++ {
		resp, err = p.keyringOnce(op, key)
		// Every operation is idempotent, so a member that did not answer
		// in time (a lost or late response, not a refusal) is asked again.
		if err == nil || resp == nil || resp.NumErr > 0 {
			break
		}
		p.log.Warn("keyring: not every member answered, retrying", zap.String("op", string(op)),
			zap.Int("answered", resp.NumResp), zap.Int("members", resp.NumNodes))
	}
	if resp == nil {
		return nil, fmt.Errorf("gossip: keyring %s: %w", op, err)
	}
	out := &KeyringResult{Keys: resp.Keys, PrimaryKeys: resp.PrimaryKeys, NumNodes: resp.NumNodes, Messages: resp.Messages}
	if err != nil {
		var msgs []string
		for node, m := range resp.Messages {
			msgs = append(msgs, node+": "+m)
		}
		return out, fmt.Errorf("gossip: keyring %s: %w %s", op, err, strings.Join(msgs, "; "))
	}
	return out, nil
}

func (p *Pool) keyringOnce(op KeyOp, key string) (*serf.KeyResponse, error) {
	km := p.serf.KeyManager()
	opts := &serf.KeyRequestOptions{RelayFactor: keyringRelay}
	switch op {
	case KeyList:
		return km.ListKeysWithOptions(opts)
	case KeyInstall:
		return km.InstallKeyWithOptions(key, opts)
	case KeyUse:
		return km.UseKeyWithOptions(key, opts)
	case KeyRemove:
		return km.RemoveKeyWithOptions(key, opts)
	}
	return nil, fmt.Errorf("gossip: keyring: unknown operation %q", op)
}
