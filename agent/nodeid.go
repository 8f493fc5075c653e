package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnd/cairn/agent/config"
)

// nodeIDFile is where the generated node ID is kept, as Consul's
// <data_dir>/node-id.
const nodeIDFile = "node-id"

// resolveNodeID returns the node's ID: node_id / --node-id when set;
// otherwise the ID kept in the data dir, generated and written there on
// first start. Dev agents and agents without a data dir get a new random
// ID each start. A generated ID is random unless disable_host_node_id is
// false, when it derives from the host's machine ID (so a rebuilt data
// dir on the same host gets the same ID).
func resolveNodeID(cfg *config.Config) (string, error) {
	if cfg.NodeID != "" {
		return strings.ToLower(cfg.NodeID), nil
	}
	hostID := cfg.DisableHostNodeID != nil && !*cfg.DisableHostNodeID
	gen := func() (string, error) {
		if hostID {
			if id, ok := hostNodeID(); ok {
				return id, nil
			}
		}
		return randomUUID()
	}
	if cfg.Dev || cfg.DataDir == "" {
		return gen()
	}
	path := filepath.Join(cfg.DataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.ToLower(strings.TrimSpace(string(b)))
		if !config.IsUUID(id) {
			return "", fmt.Errorf("agent: node ID in %s is not a UUID: %q", path, id)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("agent: read node ID: %w", err)
	}
	id, err := gen()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("agent: data dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("agent: write node ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("agent: write node ID: %w", err)
	}
	return id, nil
}

func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("agent: node ID: %w", err)
	}
	return formatUUID(b), nil
}

// hostNodeID derives a UUID from the machine ID (hashed, so the machine
// ID itself is not published).
func hostNodeID() (string, bool) {
	// The machine ID's usual homes, in order.
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(p)
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		sum := sha256.Sum256([]byte("cairn-node-id:" + strings.TrimSpace(string(b))))
		var u [16]byte
		copy(u[:], sum[:16])
		return formatUUID(u), true
	}
	return "", false
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40 // version 4 layout
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// taggedAddresses are the node's lan, wan, lan_ipv4/wan_ipv4 (or _ipv6)
// addresses, as Consul's agent publishes them.
func taggedAddresses(lan, wan string) map[string]string {
	if wan == "" {
		wan = lan
	}
	out := map[string]string{"lan": lan, "wan": wan}
	for k, v := range map[string]string{"lan": lan, "wan": wan} {
		ip := net.ParseIP(v)
		switch {
		case ip == nil:
		case ip.To4() != nil:
			out[k+"_ipv4"] = v
		default:
			out[k+"_ipv6"] = v
		}
	}
	return out
}
