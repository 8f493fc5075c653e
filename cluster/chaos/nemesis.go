package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// Nemesis injects one kind of fault. Start injects it (choosing its
// victims with the trial's seeded rng); Stop undoes it and is safe to call
// at any time, any number of times: the trial calls it after every fault
// window and again from cleanup, also when the test fails.
type Nemesis interface {
	Name() string
	Start(ctx context.Context, e *Env) error
	Stop(ctx context.Context, e *Env) error
}

// Env is what a nemesis acts on.
type Env struct {
	Cluster  *Cluster
	Firewall *Firewall // nil where partitions cannot run
	Rng      *rand.Rand
	History  *History
}

// NemesisInfo describes a nemesis of the catalogue.
type NemesisInfo struct {
	Name string
	// Firewall: needs root and iptables.
	Firewall bool
	// Skip, when set, says why this nemesis cannot run at all yet.
	Skip string
	New  func() Nemesis
	// Schedule of this nemesis; the zero value is DefaultSchedule.
	Schedule Schedule
}

// Schedule is a healthy gap drawn from [GapMin, GapMax), then a fault
// window from [FaultMin, FaultMax), repeated until the trial ends.
type Schedule struct {
	GapMin, GapMax, FaultMin, FaultMax time.Duration
}

// DefaultSchedule: windows of 5–8 s are the "8 s every 10 s":
// long enough for an election and for requests to pile up on the victim,
// short enough for several faults per minute.
var DefaultSchedule = Schedule{GapMin: 2 * time.Second, GapMax: 4 * time.Second, FaultMin: 5 * time.Second, FaultMax: 8 * time.Second}

// pauseSchedule: what a pause breaks is decided at the instant of
// SIGSTOP (which writes are sent but not yet acknowledged), so pauses
// come more often and include short ones (1 s is two election timeouts
// with fast gossip): more instants sampled per minute.
var pauseSchedule = Schedule{GapMin: 1 * time.Second, GapMax: 3 * time.Second, FaultMin: 1 * time.Second, FaultMax: 8 * time.Second}

// transferSchedule: a leadership transfer is one instant; what it can
// break happens within an election timeout of it, so transfers come often.
var transferSchedule = Schedule{GapMin: 1 * time.Second, GapMax: 3 * time.Second, FaultMin: 1 * time.Second, FaultMax: 3 * time.Second}

func (s Schedule) orDefault() Schedule {
	if s == (Schedule{}) {
		return DefaultSchedule
	}
	return s
}

// maxFault is the longest fault window of any nemesis.
const maxFault = 8 * time.Second

// Nemeses is the catalogue, in the order `make chaos` reports it.
func Nemeses() []NemesisInfo {
	return []NemesisInfo{
		{Name: "partition-leader", Firewall: true, New: func() Nemesis { return &partition{name: "partition-leader", target: leaderTarget, mode: symmetric} }},
		{Name: "partition-leader-oneway", Firewall: true, New: func() Nemesis { return &partition{name: "partition-leader-oneway", target: leaderTarget, mode: oneWay} }},
		{Name: "partition-follower", Firewall: true, New: func() Nemesis { return &partition{name: "partition-follower", target: followerTarget, mode: symmetric} }},
		{Name: "pause-leader", Schedule: pauseSchedule, New: func() Nemesis { return &pause{name: "pause-leader", target: leaderTarget} }},
		{Name: "pause-follower", Schedule: pauseSchedule, New: func() Nemesis { return &pause{name: "pause-follower", target: followerTarget} }},
		{Name: "kill", New: func() Nemesis { return &kill{name: "kill", n: 1} }},
		{Name: "kill-majority", New: func() Nemesis { return &kill{name: "kill-majority", n: 2} }},
		{Name: "transfer-leader", Schedule: transferSchedule, New: func() Nemesis { return &transfer{} }},
		{Name: "membership-change", New: func() Nemesis { return &membership{} }},
	}
}

// NemesisByName returns the catalogue entry called name.
func NemesisByName(name string) (NemesisInfo, error) {
	for _, n := range Nemeses() {
		if n.Name == name {
			return n, nil
		}
	}
	return NemesisInfo{}, fmt.Errorf("chaos: no nemesis %q", name)
}

type targetKind int

const (
	leaderTarget targetKind = iota
	followerTarget
)

// pick chooses the current leader, or a random follower. With no agreed
// leader (the cluster is still recovering) it picks any running node.
func pick(ctx context.Context, e *Env, t targetKind) *Node {
	// One draw whatever the branch, so the seed's stream stays aligned.
	r := e.Rng.IntN(1 << 20)
	var leader *Node
	_ = testutil.Wait(ctx, 5*time.Second, func() error {
		var err error
		leader, err = e.Cluster.Leader(ctx)
		return err
	})
	if leader == nil {
		return e.Cluster.Nodes[r%len(e.Cluster.Nodes)]
	}
	if t == leaderTarget {
		return leader
	}
	var others []*Node
	for _, n := range e.Cluster.Nodes {
		if n != leader {
			others = append(others, n)
		}
	}
	return others[r%len(others)]
}

type partitionMode int

const (
	symmetric partitionMode = iota
	oneWay                  // direction drawn per fault: the victim cannot receive, or cannot send
)

// partition cuts one node from the two others. Before healing it checks
// that the cut took effect, so a firewall that silently filters nothing
// fails the trial instead of passing it.
type partition struct {
	name   string
	target targetKind
	mode   partitionMode
	victim *Node
	since  time.Time
}

// effectAfter: a cut this old has outlived several election timeouts
// (500 ms with fast gossip), so its effect must be visible.
const effectAfter = 3 * time.Second

func (p *partition) Name() string { return p.name }

func (p *partition) Start(ctx context.Context, e *Env) error {
	if e.Firewall == nil {
		return errors.New("chaos: partition without a firewall")
	}
	v := pick(ctx, e, p.target)
	in, out := true, true
	if p.mode == oneWay {
		in = e.Rng.IntN(2) == 0
		out = !in
	}
	e.History.note("%s: cut %s (inbound=%v outbound=%v)", p.name, v.Name, in, out)
	p.victim, p.since = v, time.Now()
	for _, n := range e.Cluster.Nodes {
		if n == v {
			continue
		}
		if in {
			if err := e.Firewall.Cut(n, v); err != nil {
				return err
			}
		}
		if out {
			if err := e.Firewall.Cut(v, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *partition) Stop(ctx context.Context, e *Env) error {
	if e.Firewall == nil {
		return nil
	}
	var effect error
	if p.victim != nil && time.Since(p.since) >= effectAfter {
		effect = p.checkEffect(ctx, e)
	}
	p.victim = nil
	e.History.note("%s: heal", p.name)
	return errors.Join(effect, e.Firewall.HealAll())
}

// checkEffect: with the leader cut off, the two others have elected one
// of themselves; a cut-off follower knows no leader (it keeps standing
// for election in vain).
func (p *partition) checkEffect(ctx context.Context, e *Env) error {
	if p.target == followerTarget {
		l, err := e.Cluster.leaderOf(ctx, p.victim)
		if err == nil && l != "" {
			return fmt.Errorf("%s: %s cut off for %v still names leader %s: the partition did not take effect", p.name, p.victim.Name, time.Since(p.since).Round(time.Millisecond), l)
		}
		return nil
	}
	for _, n := range e.Cluster.Nodes {
		if n == p.victim {
			continue
		}
		l, err := e.Cluster.leaderOf(ctx, n)
		if err == nil && l == p.victim.RPCAddr() {
			return fmt.Errorf("%s: %s still names the cut-off %s leader after %v: the partition did not take effect", p.name, n.Name, p.victim.Name, time.Since(p.since).Round(time.Millisecond))
		}
	}
	return nil
}

// pause SIGSTOPs one node; Stop SIGCONTs it.
type pause struct {
	name   string
	target targetKind
	victim *Node
}

func (p *pause) Name() string { return p.name }

func (p *pause) Start(ctx context.Context, e *Env) error {
	p.victim = pick(ctx, e, p.target)
	e.History.note("%s: SIGSTOP %s", p.name, p.victim.Name)
	return p.victim.Pause()
}

func (p *pause) Stop(ctx context.Context, e *Env) error {
	if p.victim == nil {
		return nil
	}
	v := p.victim
	p.victim = nil
	e.History.note("%s: SIGCONT %s", p.name, v.Name)
	return v.Resume()
}

// kill SIGKILLs n nodes (the leader first when n > 1, so quorum is lost
// for certain); Stop restarts them on their data dirs.
type kill struct {
	name    string
	n       int
	victims []*Node
}

func (k *kill) Name() string { return k.name }

func (k *kill) Start(ctx context.Context, e *Env) error {
	k.victims = nil
	perm := e.Rng.Perm(len(e.Cluster.Nodes))
	if k.n == 1 {
		k.victims = append(k.victims, e.Cluster.Nodes[perm[0]])
	} else {
		first := pick(ctx, e, leaderTarget)
		k.victims = append(k.victims, first)
		for _, i := range perm {
			if len(k.victims) == k.n {
				break
			}
			if n := e.Cluster.Nodes[i]; n != first {
				k.victims = append(k.victims, n)
			}
		}
	}
	for _, v := range k.victims {
		e.History.note("%s: SIGKILL %s", k.name, v.Name)
		v.Kill()
	}
	return nil
}

func (k *kill) Stop(ctx context.Context, e *Env) error {
	var errs []error
	for _, v := range k.victims {
		if v.Running() {
			continue
		}
		e.History.note("%s: restart %s", k.name, v.Name)
		errs = append(errs, v.Restart())
	}
	k.victims = nil
	return errors.Join(errs...)
}

// transfer asks a random node (so the request is forwarded two times in
// three) to hand leadership over, to a random follower or to whichever
// voter raft picks; Stop checks that another node leads.
type transfer struct {
	from *Node // the leader when the transfer was asked; nil when none ran
}

func (tr *transfer) Name() string { return "transfer-leader" }

func (tr *transfer) Start(ctx context.Context, e *Env) error {
	old := pick(ctx, e, leaderTarget)
	via := e.Cluster.Nodes[e.Rng.IntN(len(e.Cluster.Nodes))]
	target := pick(ctx, e, followerTarget)
	path := "/v1/operator/raft/transfer-leader"
	what := "any voter"
	if e.Rng.IntN(2) == 0 {
		path += "?id=" + target.Name
		what = target.Name
	}
	e.History.note("transfer-leader: from %s to %s via %s", old.Name, what, via.Name)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.Cluster.call(cctx, via, http.MethodPost, path); err != nil {
		return fmt.Errorf("transfer-leader: %w", err)
	}
	tr.from = old
	return nil
}

func (tr *transfer) Stop(ctx context.Context, e *Env) error {
	from := tr.from
	tr.from = nil
	if from == nil {
		return nil
	}
	return testutil.Wait(ctx, 10*time.Second, func() error {
		l, err := e.Cluster.Leader(ctx)
		if err == nil && l == from {
			err = fmt.Errorf("transfer-leader: %s still leads after a successful transfer", from.Name)
		}
		return err
	})
}

// membership removes a follower from the Raft configuration with
// `remove-peer` (through a random other node) while the workload runs and
// checks that the configuration dropped it; Stop has it leave gracefully
// and start again on its data dir, so it rejoins gossip and the leader
// adds it back as a voter, all under load. (A removed server that keeps
// running is re-added by the leader's next reconcile, as in Consul, so
// Stop may find it a voter already.)
type membership struct {
	victim *Node
}

func (m *membership) Name() string { return "membership-change" }

func (m *membership) Start(ctx context.Context, e *Env) error {
	v := pick(ctx, e, followerTarget)
	var via *Node
	for via == nil || via == v {
		via = e.Cluster.Nodes[e.Rng.IntN(len(e.Cluster.Nodes))]
	}
	e.History.note("membership-change: remove-peer %s via %s", v.Name, via.Name)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.Cluster.call(cctx, via, http.MethodDelete, "/v1/operator/raft/peer?id="+v.Name); err != nil {
		return fmt.Errorf("membership-change: %w", err)
	}
	m.victim = v
	// The removal must show in the configuration: the DELETE answers once
	// the new configuration is committed, so every other node's list
	// drops v soon after. It may not stay out: see Stop.
	other := firstOther(e.Cluster, v)
	return testutil.Wait(cctx, 5*time.Second, func() error {
		ids, err := e.Cluster.voters(cctx, other)
		if err == nil && slices.Contains(ids, v.Name) {
			err = fmt.Errorf("membership-change: %s removed, yet %s lists voters %v", v.Name, other.Name, ids)
		}
		return err
	})
}

// firstOther is the first node of c that is not v.
func firstOther(c *Cluster, v *Node) *Node {
	for _, n := range c.Nodes {
		if n != v {
			return n
		}
	}
	return nil
}

func (m *membership) Stop(ctx context.Context, e *Env) error {
	v := m.victim
	m.victim = nil
	if v == nil {
		return nil
	}
	other := firstOther(e.Cluster, v)
	// v kept running and gossiping, so the leader's reconcile (every 60 s)
	// may have added it back as a voter by now, as Consul's does for a
	// live server: remove-peer is meant for servers that are gone. Both
	// are fine here; what follows must work either way.
	ids, err := e.Cluster.voters(ctx, other)
	if err != nil {
		return fmt.Errorf("membership-change: voters from %s: %w", other.Name, err)
	}
	e.History.note("membership-change: %s leaves and restarts (voter again before that: %v)", v.Name, slices.Contains(ids, v.Name))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.Cluster.call(cctx, v, http.MethodPut, "/v1/agent/leave"); err != nil {
		return fmt.Errorf("membership-change: %w", err)
	}
	if err := v.WaitExit(20 * time.Second); err != nil {
		v.Kill()
		return err
	}
	if err := v.Restart(); err != nil {
		return err
	}
	return testutil.Wait(ctx, 30*time.Second, func() error {
		ids, err := e.Cluster.voters(ctx, other)
		if err == nil && !slices.Contains(ids, v.Name) {
			err = fmt.Errorf("membership-change: %s not a voter again (voters %v)", v.Name, ids)
		}
		return err
	})
}
