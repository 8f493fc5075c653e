package chaos

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// checkTimeout bounds porcupine on one key. Histories with many
// outcome-unknown writes can make the search exponential; a key that runs
// out of time is reported as unchecked and fails the trial, never passes
// as linearizable.
const checkTimeout = 30 * time.Second

// registerModel is a KV key as a register: state is its value, "" when
// absent (workload values are never empty). CAS and inserts compare by
// value: values are unique per operation, so in a history where every
// write applies at most once, a value identifies the write (and its
// ModifyIndex) the client read.
var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(Op), output.(Op)
		switch in.Kind {
		case KindGet:
			if !out.Found {
				return st == "", st
			}
			return st == out.Read, st
		case KindPut:
			return true, in.Value // acknowledged, or unknown and taken as applied here
		case KindCAS, KindInsert:
			expect := in.Expect // insert: expect absent
			switch out.Outcome {
			case OK:
				return st == expect, in.Value
			case Fail:
				return st != expect, st
			default: // unknown: applies iff the compare holds at this point
				if st == expect {
					return true, in.Value
				}
				return true, st
			}
		}
		return false, st
	},
	DescribeOperation: describeOp,
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return state.(string)
	},
}

// instanceModel is one catalog service instance: registered or not. A
// read of the whole set is projected onto every instance it could see.
var instanceModel = porcupine.Model{
	Init: func() any { return false },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(bool), input.(Op), output.(Op)
		switch in.Kind {
		case KindRegister:
			return out.Outcome != Fail, true
		case KindDeregister:
			return out.Outcome != Fail, false
		case KindReadSet:
			return st == contains(out.Set, in.Key), st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		o := output.(Op)
		if o.Kind == KindReadSet {
			return fmt.Sprintf("read-set %s -> %v", o.Key, contains(o.Set, o.Key))
		}
		return describeOp(input, output)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state) },
}

func contains(set []string, s string) bool {
	i := sort.SearchStrings(set, s)
	return i < len(set) && set[i] == s
}

// Report is what the checks found in one trial.
type Report struct {
	Ops        int      // operations that reached a server (final reads and refused connections excluded)
	Unknown    int      // of which outcome-unknown
	Acquired   int      // lock acquisitions acknowledged true (handovers the lock check covers)
	Illegal    []string // keys/instances whose history is not linearizable
	Unchecked  []string // keys porcupine could not decide in checkTimeout (fails the trial)
	Lost       []string // acknowledged writes missing after heal
	Duplicated []string // writes applied although answered "not applied", or applied twice
	Diverged   []string // replicas that differ after heal
	Logs       []string // unexpected error-level server log lines
	Other      []string // the harness could not finish a step (no leader after heal, ...)
}

// OK reports whether the trial found nothing wrong.
func (r *Report) OK() bool {
	// Unchecked fails too: a legal history linearizes quickly, so a key
	// that exhausts checkTimeout is almost always an illegal one.
	return len(r.Illegal)+len(r.Unchecked)+len(r.Lost)+len(r.Duplicated)+len(r.Diverged)+len(r.Logs)+len(r.Other) == 0
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ops=%d unknown=%d acquired=%d illegal=%d lost=%d duplicated=%d diverged=%d unchecked=%d bad-logs=%d",
		r.Ops, r.Unknown, r.Acquired, len(r.Illegal), len(r.Lost), len(r.Duplicated), len(r.Diverged), len(r.Unchecked), len(r.Logs))
	for _, l := range []struct {
		name string
		v    []string
	}{{"illegal", r.Illegal}, {"unchecked", r.Unchecked}, {"lost", r.Lost}, {"duplicated", r.Duplicated}, {"diverged", r.Diverged}, {"unexpected log", r.Logs}, {"harness", r.Other}} {
		for i, s := range l.v {
			if i == 20 {
				fmt.Fprintf(&b, "\n  %s: ... %d more", l.name, len(l.v)-i)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.name, s)
		}
	}
	return b.String()
}

// describeOp is an operation as porcupine's visualisation shows it: the
// history line without its timestamps.
func describeOp(_, output any) string {
	return strings.SplitN(output.(Op).String(), "  ", 2)[1]
}

// lockModel is the lock key as Consul's KV lock: state is the holding
// session ("" = free). acquire succeeds when the lock is free or already
// held by the same session; release succeeds only for the holder; a read
// sees the holder. Two sessions inside at once is a history no order of
// these steps explains: porcupine reports it illegal.
var lockModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(Op), output.(Op)
		free := st == "" || st == in.Session
		switch in.Kind {
		case KindLockRead:
			return st == out.Session, st
		case KindAcquire:
			switch out.Outcome {
			case OK:
				return free, in.Session
			case Fail:
				return !free, st
			default: // unknown: takes the lock iff it was free here
				if free {
					return true, in.Session
				}
				return true, st
			}
		case KindRelease:
			mine := st == in.Session && st != ""
			switch out.Outcome {
			case OK:
				return mine, ""
			case Fail:
				return !mine, st
			default:
				if mine {
					return true, ""
				}
				return true, st
			}
		}
		return false, st
	},
	DescribeOperation: describeOp,
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(free)"
		}
		return "held by " + shortSession(state.(string))
	},
}

// porcupineOps turns one key's ops into porcupine operations. Unknown
// writes return at +inf: they may take effect at any point after their
// call, or never (linearized after every observation). Unknown reads say
// nothing and are dropped.
func porcupineOps(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		if o.Outcome == Refused {
			continue
		}
		ret := o.Return
		if o.Outcome == Unknown {
			if o.Kind == KindGet || o.Kind == KindReadSet || o.Kind == KindLockRead {
				continue
			}
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: o.Process, Input: o, Call: o.Call, Output: o, Return: ret})
	}
	return out
}

// partitions splits the history per KV key, per catalog instance and per
// lock.
func partitions(ops []Op) (kv, inst, locks map[string][]Op) {
	kv, inst, locks = map[string][]Op{}, map[string][]Op{}, map[string][]Op{}
	firstCall := map[string]int64{}
	for _, o := range ops {
		switch o.Kind {
		case KindGet, KindPut, KindCAS, KindInsert:
			kv[o.Key] = append(kv[o.Key], o)
		case KindAcquire, KindRelease, KindLockRead:
			locks[o.Key] = append(locks[o.Key], o)
		case KindRegister, KindDeregister:
			if _, ok := firstCall[o.Key]; !ok {
				firstCall[o.Key] = o.Call
			}
			inst[o.Key] = append(inst[o.Key], o)
		}
	}
	for _, o := range ops {
		if o.Kind != KindReadSet {
			continue
		}
		for id, fc := range firstCall {
			// A read that returned before the instance's first write was
			// invoked cannot have seen it; projecting it there adds
			// nothing but work. Phantoms are caught in checkPhantoms.
			if o.Outcome == Unknown || o.Return >= fc {
				p := o
				p.Key = id
				inst[id] = append(inst[id], p)
			}
		}
	}
	return kv, inst, locks
}

// checkLinearizable runs porcupine per key and per instance; for every
// illegal one it writes porcupine's HTML visualisation under dir.
func checkLinearizable(ops []Op, dir string, r *Report) {
	kv, inst, locks := partitions(ops)
	run := func(prefix string, m map[string][]Op, model porcupine.Model) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			res, info := porcupine.CheckOperationsVerbose(model, porcupineOps(m[k]), checkTimeout)
			switch res {
			case porcupine.Illegal:
				name := prefix + k
				if dir != "" {
					file := strings.NewReplacer("/", "_", " ", "-").Replace(name)
					path := filepath.Join(dir, "porcupine-"+file+".html")
					if err := porcupine.VisualizePath(model, info, path); err == nil {
						name += " (" + path + ")"
					}
				}
				r.Illegal = append(r.Illegal, name)
			case porcupine.Unknown:
				r.Unchecked = append(r.Unchecked, prefix+k)
			}
		}
	}
	run("kv ", kv, registerModel)
	run("instance ", inst, instanceModel)
	run("lock ", locks, lockModel)
}

// checkPhantoms flags reads that saw an instance no client had yet tried
// to register: nothing in the per-instance histories would explain it.
func checkPhantoms(ops []Op, r *Report) {
	firstCall := map[string]int64{}
	for _, o := range ops {
		if o.Kind == KindRegister {
			if fc, ok := firstCall[o.Key]; !ok || o.Call < fc {
				firstCall[o.Key] = o.Call
			}
		}
	}
	for _, o := range ops {
		if o.Kind != KindReadSet || o.Outcome != OK {
			continue
		}
		for _, id := range o.Set {
			if fc, ok := firstCall[id]; !ok || fc > o.Return {
				r.Illegal = append(r.Illegal, fmt.Sprintf("instance %s: read before any register: %s", id, o))
			}
		}
	}
}

// checkDuplicates finds writes applied although the client was told they
// were not, and values applied more than once. replicas are the KV
// contents each server holds after heal.
func checkDuplicates(ops []Op, replicas map[string]map[string]kvEntry, r *Report) {
	// A value observed with two ModifyIndexes was written twice.
	seenAt := map[string]uint64{}
	dup := map[string]bool{}
	observe := func(val string, idx uint64, where string) {
		if val == "" {
			return
		}
		if prev, ok := seenAt[val]; ok && prev != idx && !dup[val] {
			dup[val] = true
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("value %s applied twice: seen at index %d and %d (%s)", val, prev, idx, where))
		}
		if _, ok := seenAt[val]; !ok {
			seenAt[val] = idx
		}
	}
	for _, o := range ops {
		if o.Kind == KindGet && o.Outcome == OK && o.Found {
			observe(o.Read, o.ReadIndex, o.String())
		}
	}
	for srv, kv := range replicas {
		for _, e := range kv {
			observe(string(e.Value), e.ModifyIndex, "final state on "+srv)
		}
	}
	// A write answered false whose value is visible was applied.
	for _, o := range ops {
		if o.Outcome != Fail || (o.Kind != KindCAS && o.Kind != KindInsert) {
			continue
		}
		if _, ok := seenAt[o.Value]; ok && !dup[o.Value] {
			dup[o.Value] = true
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("answered false but applied: %s", o))
		}
	}
}

// checkDurable checks acknowledged inserts and registrations against what
// every server holds after heal; unknown ones may be either way.
func checkDurable(ops []Op, replicas map[string]map[string]kvEntry, sets map[string][]string, r *Report) {
	deregistered := map[string]bool{}
	for _, o := range ops {
		if o.Kind == KindDeregister {
			deregistered[o.Key] = true
		}
	}
	servers := make([]string, 0, len(replicas)+len(sets))
	for srv := range replicas {
		servers = append(servers, srv)
	}
	for srv := range sets {
		if _, ok := replicas[srv]; !ok {
			servers = append(servers, srv)
		}
	}
	sort.Strings(servers)
	for _, o := range ops {
		if o.Outcome != OK || (o.Kind == KindRegister && deregistered[o.Key]) {
			continue
		}
		var missing []string
		for _, srv := range servers {
			switch o.Kind {
			case KindInsert:
				if kv, ok := replicas[srv]; ok {
					if e, ok := kv[o.Key]; !ok || string(e.Value) != o.Value {
						missing = append(missing, srv)
					}
				}
			case KindRegister:
				if set, ok := sets[srv]; ok && !contains(set, o.Key) {
					missing = append(missing, srv)
				}
			}
		}
		if len(missing) > 0 {
			r.Lost = append(r.Lost, fmt.Sprintf("%s: missing on %s", o, strings.Join(missing, ",")))
		}
	}
}

// checkReplicas compares what each server holds (stale reads, after the
// cluster settled) and records every difference.
func checkReplicas(replicas map[string]map[string]kvEntry, sets map[string][]string, r *Report) {
	r.Diverged = append(r.Diverged, replicaDiff(replicas, sets)...)
}

func replicaDiff(replicas map[string]map[string]kvEntry, sets map[string][]string) []string {
	var diffs []string
	names := make([]string, 0, len(replicas))
	for n := range replicas {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 2 {
		return nil
	}
	ref := names[0]
	for _, n := range names[1:] {
		keys := map[string]bool{}
		for k := range replicas[ref] {
			keys[k] = true
		}
		for k := range replicas[n] {
			keys[k] = true
		}
		for k := range keys {
			a, aok := replicas[ref][k]
			b, bok := replicas[n][k]
			if aok != bok || string(a.Value) != string(b.Value) || a.ModifyIndex != b.ModifyIndex {
				diffs = append(diffs, fmt.Sprintf("kv %s: %s has %q@%d (present=%v), %s has %q@%d (present=%v)", k, ref, a.Value, a.ModifyIndex, aok, n, b.Value, b.ModifyIndex, bok))
			}
		}
		if strings.Join(sets[ref], ",") != strings.Join(sets[n], ",") {
			diffs = append(diffs, fmt.Sprintf("service %s: %s has %v, %s has %v", serviceName, ref, sets[ref], n, sets[n]))
		}
	}
	sort.Strings(diffs)
	return diffs
}
