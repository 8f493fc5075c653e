package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cairnd/cairn/cluster/gossip"
)

// Addrs are the host:port each listener of a started agent is bound to;
// empty for a listener that is off (or, for Server and SerfWAN, absent on
// client agents). With port 0 in the configuration the kernel picks the
// port and Addrs is the only way to learn it: Run logs it ("agent
// listening"), writes it to Options.ReadyFile, and /v1/agent/self shows it
// under "Addrs". Serf and server addresses are the advertised ones, what
// peers dial and what the agent gossips.
type Addrs struct {
	DNS     string `json:"dns,omitempty"`
	HTTP    string `json:"http,omitempty"`
	HTTPS   string `json:"https,omitempty"`
	Server  string `json:"server,omitempty"`
	SerfLAN string `json:"serf_lan,omitempty"`
	SerfWAN string `json:"serf_wan,omitempty"`
}

// Addrs reports the bound addresses; valid once Start returned nil.
func (a *Agent) Addrs() Addrs { return a.addrs }

func (a *Agent) boundAddrs() Addrs {
	var out Addrs
	if a.dns != nil {
		_, tcp := a.dns.Addr()
		out.DNS = tcp.String()
	}
	if a.httpLn != nil {
		out.HTTP = a.httpLn.Addr().String()
	}
	if a.httpsLn != nil {
		out.HTTPS = a.httpsLn.Addr().String()
	}
	if a.srv != nil {
		out.Server = a.srv.RPCAddr()
		if w := a.srv.WAN(); w != nil {
			out.SerfWAN = memberAddr(w)
		}
	}
	if p := a.lanPool(); p != nil {
		out.SerfLAN = memberAddr(p)
	}
	return out
}

func memberAddr(p *gossip.Pool) string {
	m := p.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// writeReadyFile writes addrs as JSON to path atomically (a reader never
// sees a partial file: it appears whole or not at all).
func writeReadyFile(path string, addrs Addrs) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("agent: ready file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("agent: ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("agent: ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("agent: ready file: %w", err)
	}
	return nil
}
