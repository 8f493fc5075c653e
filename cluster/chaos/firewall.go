package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Firewall cuts links between nodes with iptables.
//
// All nodes share the loopback interface, and the kernel gives every
// outgoing TCP connection to 127.0.0.x the source address 127.0.0.1 (Raft,
// RPC and memberlist's TCP dial without binding a local address), so a
// source-address rule cannot tell which node sent a packet. Instead each
// node runs as its own uid and rules match the sender with `-m owner` in
// OUTPUT: "drop what A sends to B" is
//
//	-m owner --uid-owner A -d B          (A's connections and datagrams to B)
//	-m owner --uid-owner A -m connmark --mark B   (A's replies on B's connections)
//
// where a mangle rule marks every new connection with its initiator's
// uid. The harness itself (another uid) is never filtered, so clients
// keep reaching every node, as in the setup.
//
// Rules live in two chains of our own per lane, hooked into OUTPUT; Close
// removes the hooks and the chains, so nothing we added survives the
// trial. Lanes never touch each other's chains: their nodes have other
// uids and addresses, so their rules cannot match another lane's packets.
type Firewall struct {
	mu        sync.Mutex
	cut       map[[2]*Node]bool
	hooks     bool
	fwChain   string
	markChain string
}

// FirewallUsable says why partitions cannot run here, or nil.
func FirewallUsable() error {
	if os.Geteuid() != 0 {
		return errors.New("partition nemeses need root (iptables and per-node uids)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return errors.New("partition nemeses need iptables (apt-get install iptables)")
	}
	if out, err := exec.Command("iptables", "-w", "-S", "OUTPUT").CombinedOutput(); err != nil {
		return fmt.Errorf("iptables does not work here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newFirewall creates the chains and marks connections of the nodes.
// Leftovers of a run that was killed before its cleanup are removed first.
func newFirewall(lane int, nodes []*Node) (*Firewall, error) {
	f := &Firewall{cut: map[[2]*Node]bool{}, fwChain: "CAIRN-CHAOS", markChain: "CAIRN-CHAOS-MARK"}
	if lane > 0 {
		f.fwChain += "-" + strconv.Itoa(lane)
		f.markChain += "-" + strconv.Itoa(lane)
	}
	f.removeChains()
	fwChain, markChain := f.fwChain, f.markChain
	steps := [][]string{
		{"-N", fwChain},
		{"-t", "mangle", "-N", markChain},
	}
	for _, n := range nodes {
		uid := strconv.Itoa(n.UID)
		steps = append(steps, []string{"-t", "mangle", "-A", markChain, "-m", "conntrack", "--ctstate", "NEW",
			"-m", "owner", "--uid-owner", uid, "-j", "CONNMARK", "--set-mark", uid})
	}
	steps = append(steps,
		[]string{"-t", "mangle", "-I", "OUTPUT", "-j", markChain},
		[]string{"-I", "OUTPUT", "-j", fwChain},
	)
	f.hooks = true
	for _, s := range steps {
		if err := iptables(s...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func linkRules(from, to *Node) [][]string {
	uid, mark := strconv.Itoa(from.UID), strconv.Itoa(to.UID)
	return [][]string{
		{"-m", "owner", "--uid-owner", uid, "-d", to.IP + "/32", "-j", "DROP"},
		{"-m", "owner", "--uid-owner", uid, "-m", "connmark", "--mark", mark, "-j", "DROP"},
	}
}

// Cut drops every packet from sends to to (one direction).
func (f *Firewall) Cut(from, to *Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]*Node{from, to}
	if f.cut[k] {
		return nil
	}
	f.cut[k] = true // before adding: a half-added link is still undone
	for _, r := range linkRules(from, to) {
		if err := iptables(append([]string{"-A", f.fwChain}, r...)...); err != nil {
			return err
		}
	}
	return nil
}

// HealAll deletes every rule Cut added.
func (f *Firewall) HealAll() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for k := range f.cut {
		for _, r := range linkRules(k[0], k[1]) {
			if err := iptables(append([]string{"-D", f.fwChain}, r...)...); err != nil && !strings.Contains(err.Error(), "does a matching rule exist") && !strings.Contains(err.Error(), "Bad rule") {
				errs = append(errs, err)
			}
		}
		delete(f.cut, k)
	}
	return errors.Join(errs...)
}

// Close heals and removes our chains and their hooks in OUTPUT.
func (f *Firewall) Close() error {
	err := f.HealAll()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hooks {
		f.removeChains()
		f.hooks = false
	}
	return err
}

// removeChains deletes hooks and chains, ignoring what is not there.
func (f *Firewall) removeChains() {
	fwChain, markChain := f.fwChain, f.markChain
	for iptables("-D", "OUTPUT", "-j", fwChain) == nil {
	}
	for iptables("-t", "mangle", "-D", "OUTPUT", "-j", markChain) == nil {
	}
	_ = iptables("-F", fwChain)
	_ = iptables("-X", fwChain)
	_ = iptables("-t", "mangle", "-F", markChain)
	_ = iptables("-t", "mangle", "-X", markChain)
}
