package chaos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ms converts seconds (as the excerpts print them) to history time.
func ms(sec float64) int64 { return int64(sec * 1e9) }

func put(p int, key, val string, call, ret float64, out Outcome) Op {
	return Op{Process: p, Kind: KindPut, Key: key, Value: val, Call: ms(call), Return: ms(ret), Outcome: out}
}

func cas(p int, key, val, expect string, idx uint64, call, ret float64, out Outcome) Op {
	return Op{Process: p, Kind: KindCAS, Key: key, Value: val, Expect: expect, ExpectIndex: idx, Call: ms(call), Return: ms(ret), Outcome: out}
}

func get(p int, key, val string, idx uint64, call, ret float64) Op {
	return Op{Process: p, Kind: KindGet, Key: key, Read: val, ReadIndex: idx, Found: val != "", Call: ms(call), Return: ms(ret), Outcome: OK}
}

func insert(p int, val string, call, ret float64, out Outcome) Op {
	return Op{Process: p, Kind: KindInsert, Key: "u/" + val, Value: val, Call: ms(call), Return: ms(ret), Outcome: out}
}

func catalog(p int, k Kind, id string, call, ret float64, out Outcome) Op {
	return Op{Process: p, Kind: k, Key: id, Call: ms(call), Return: ms(ret), Outcome: out}
}

func readSetOp(p int, call, ret float64, ids ...string) Op {
	return Op{Process: p, Kind: KindReadSet, Key: serviceName, Set: ids, Call: ms(call), Return: ms(ret), Outcome: OK}
}

func lockOp(p int, k Kind, session string, call, ret float64, out Outcome) Op {
	return Op{Process: p, Kind: k, Key: lockKey, Session: session, Call: ms(call), Return: ms(ret), Outcome: out}
}

func entry(val string, idx uint64) kvEntry { return kvEntry{Value: []byte(val), ModifyIndex: idx} }

// TestChecks pins what each check calls a violation, starting with the
// issue's own excerpt: the harness must flag today's bug, and must not
// flag histories a correct cluster can produce.
func TestChecks(t *testing.T) {
	for _, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var r Report
			checkLinearizable(tc.ops, dir, &r)
			checkPhantoms(tc.ops, &r)
			checkDuplicates(tc.ops, tc.replicas, &r)
			checkDurable(tc.ops, tc.replicas, tc.sets, &r)
			checkReplicas(tc.replicas, tc.sets, &r)
			if len(r.Illegal) != tc.illegal || len(r.Lost) != tc.lost || len(r.Duplicated) != tc.duplicated || len(r.Diverged) != tc.diverged {
				t.Fatalf("got illegal=%d lost=%d duplicated=%d diverged=%d, want %d/%d/%d/%d\n%s",
					len(r.Illegal), len(r.Lost), len(r.Duplicated), len(r.Diverged), tc.illegal, tc.lost, tc.duplicated, tc.diverged, r.String())
			}
			if tc.illegal > 0 && strings.HasPrefix(r.Illegal[0], "kv ") {
				// The failing key's visualisation is an artefact.
				html, _ := filepath.Glob(filepath.Join(dir, "porcupine-*.html"))
				if len(html) == 0 {
					t.Fatalf("no porcupine visualisation written for %s", r.Illegal[0])
				}
				if b, err := os.ReadFile(html[0]); err != nil || len(b) == 0 {
					t.Fatalf("visualisation %s unreadable or empty: %v", html[0], err)
				}
			}
		})
	}
}

// checkCase is a history (and the servers' state after heal) with the
// number of each kind of finding the checks must report.
type checkCase struct {
	name     string
	ops      []Op
	replicas map[string]map[string]kvEntry // per server, after heal
	sets     map[string][]string
	// The number of findings of each kind the report must hold.
	illegal, lost, duplicated, diverged int
}

// checkCases are TestChecks' histories, each one rule of the checks.
var checkCases = []checkCase{{
	name: "lock: handovers through release are legal",
	ops: []Op{
		lockOp(1, KindAcquire, "sA", 1, 2, OK),
		lockOp(2, KindAcquire, "sB", 3, 4, Fail),
		lockOp(3, KindLockRead, "sA", 4.5, 4.6, OK),
		lockOp(1, KindRelease, "sA", 5, 6, OK),
		lockOp(2, KindAcquire, "sB", 7, 8, OK),
		lockOp(2, KindAcquire, "sB", 8.5, 8.6, OK), // re-acquire by the holder
		lockOp(1, KindRelease, "sA", 9, 10, Fail),  // not the holder
		lockOp(3, KindLockRead, "sB", 11, 12, OK),
	},
}, {
	name: "lock: two sessions inside at once",
	ops: []Op{
		lockOp(1, KindAcquire, "sA", 1, 2, OK),
		lockOp(2, KindAcquire, "sB", 3, 4, OK),
	},
	illegal: 1,
}, {
	name: "lock: an unknown release may apply late, an unknown acquire may never",
	ops: []Op{
		lockOp(1, KindAcquire, "sA", 1, 2, OK),
		lockOp(1, KindRelease, "sA", 3, 0, Unknown),
		lockOp(3, KindLockRead, "sA", 4, 5, OK),
		lockOp(2, KindAcquire, "sB", 6, 7, OK),
		lockOp(4, KindAcquire, "sC", 8, 0, Unknown),
		lockOp(3, KindLockRead, "sB", 9, 10, OK),
	},
}, {
	name: "lock: a read of a holder that never acquired",
	ops: []Op{
		lockOp(1, KindAcquire, "sA", 1, 2, OK),
		lockOp(3, KindLockRead, "sZ", 3, 4, OK),
	},
	illegal: 1,
}, {
	name: "issue 13 excerpt: a PUT applied again over an acknowledged CAS",
	ops: []Op{
		put(2, "r2", "c2-4398", 43.798, 51.827, OK),
		get(7, "r2", "c2-4398", 20851, 51.807, 51.808),
		cas(3, "r2", "c3-3843", "c2-4398", 20851, 51.818, 51.819, OK),
		get(7, "r2", "c3-3843", 20870, 51.824, 51.825),
		get(3, "r2", "c2-4398", 20882, 51.825, 51.826),
	},
	illegal: 1, duplicated: 1,
}, {
	name: "one-shot insert answered false yet present",
	ops: []Op{
		insert(1, "c1-7", 1, 9, Fail),
		get(2, "u/c1-7", "c1-7", 40, 10, 11),
	},
	replicas: map[string]map[string]kvEntry{"s1": {"u/c1-7": entry("c1-7", 40)}},
	illegal:  1, duplicated: 1,
}, {
	name: "CAS answered false but applied",
	ops: []Op{
		put(1, "r0", "c1-1", 0, 1, OK),
		get(2, "r0", "c1-1", 10, 2, 3),
		cas(2, "r0", "c2-2", "c1-1", 10, 4, 8, Fail),
		get(3, "r0", "c2-2", 12, 9, 10),
	},
	illegal: 1, duplicated: 1,
}, {
	name: "acknowledged insert missing on one server",
	ops:  []Op{insert(1, "c1-3", 1, 2, OK)},
	replicas: map[string]map[string]kvEntry{
		"s1": {"u/c1-3": entry("c1-3", 7)},
		"s2": {},
	},
	lost: 1, diverged: 1,
}, {
	name: "outcome-unknown writes may land late or never",
	ops: []Op{
		put(1, "r0", "c1-1", 0, 0, Unknown),
		get(2, "r0", "", 0, 1, 2),
		get(2, "r0", "c1-1", 9, 30, 31),
		insert(3, "c3-1", 1, 0, Unknown),
		insert(3, "c3-2", 1, 0, Unknown),
		get(4, "u/c3-2", "c3-2", 11, 40, 41),
	},
	replicas: map[string]map[string]kvEntry{
		"s1": {"r0": entry("c1-1", 9), "u/c3-2": entry("c3-2", 11)},
		"s2": {"r0": entry("c1-1", 9), "u/c3-2": entry("c3-2", 11)},
	},
}, {
	name: "a linearizable concurrent history",
	ops: []Op{
		put(1, "r1", "c1-1", 0, 5, OK),
		put(2, "r1", "c2-1", 1, 4, OK),
		get(3, "r1", "c1-1", 11, 2, 6),
		cas(3, "r1", "c3-1", "c1-1", 11, 7, 8, OK),
		cas(2, "r1", "c2-2", "c1-1", 11, 7.5, 9, Fail),
		get(1, "r1", "c3-1", 13, 10, 11),
	},
}, {
	name: "value seen at two indexes: applied twice",
	ops: []Op{
		put(1, "r1", "c1-1", 0, 5, OK),
		get(2, "r1", "c1-1", 11, 6, 7),
		get(2, "r1", "c1-1", 15, 8, 9),
	},
	duplicated: 1,
}, {
	name: "catalog: instance resurrected after acknowledged deregister",
	ops: []Op{
		catalog(1, KindRegister, "i-1", 0, 1, OK),
		catalog(1, KindDeregister, "i-1", 2, 3, OK),
		readSetOp(2, 4, 5, "i-1"),
	},
	illegal: 1,
}, {
	name:    "catalog: phantom instance nobody registered",
	ops:     []Op{readSetOp(2, 4, 5, "i-9")},
	illegal: 1,
}, {
	name: "catalog: acknowledged registration lost",
	ops: []Op{
		catalog(1, KindRegister, "i-1", 0, 1, OK),
		catalog(2, KindRegister, "i-2", 0, 1, Unknown),
	},
	sets: map[string][]string{"s1": {}, "s2": {}},
	lost: 1,
}}

// TestHistoryText: the artefact reads like the excerpts, one op a
// line in call order, with nemesis events interleaved.
func TestHistoryText(t *testing.T) {
	h := &History{}
	h.add(get(7, "r2", "c2-4398", 20851, 51.807, 51.808))
	h.add(put(2, "r2", "c2-4398", 43.798, 51.827, OK))
	h.add(Op{Process: 9, Node: "s1", Kind: KindInsert, Key: "u/c9-1", Value: "c9-1", Call: ms(44), Outcome: Unknown, Err: "timeout"})
	h.notes = append(h.notes, "[43.799] nemesis: pause-leader: SIGSTOP s3")
	var b strings.Builder
	if err := h.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"[43.798,51.827] p2 via   put r2 c2-4398 -> true",
		"[43.799] nemesis: pause-leader: SIGSTOP s3",
		"[44.000,?] p9 via s1  insert u/c9-1 c9-1 -> unknown: timeout",
		"[51.807,51.808] p7 via   get r2 -> c2-4398 @20851",
		"",
	}, "\n")
	if b.String() != want {
		t.Fatalf("history text:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestExpectedErrors: a fault's network errors pass, anything else at
// error level (a failed FSM apply, a snapshot restore error) fails.
func TestExpectedErrors(t *testing.T) {
	for _, tc := range []struct {
		line     string
		expected bool
	}{
		{`{"level":"error","logger":"server.raft","msg":"raft: failed to heartbeat to: peer=127.0.0.31:8300 backoff time=10ms error=EOF"}`, true},
		{`{"level":"error","logger":"server.raft","msg":"raft: peer has newer term, stopping replication: peer=\"{Voter s2 127.0.0.32:8300}\""}`, true},
		{`{"level":"error","logger":"server.raft-net","msg":"raft-net: failed to decode incoming command: error=\"read tcp 127.0.0.32:8300->127.0.0.1:60110: read: connection reset by peer\""}`, true},
		{`{"level":"error","logger":"server.serf.lan","msg":"memberlist: Failed to send gossip to 127.0.0.32:8301: write udp 127.0.0.31:8301->127.0.0.32:8301: sendto: operation not permitted"}`, true},
		{`{"level":"error","logger":"server.raft","msg":"raft: failed to take snapshot: error=disk full"}`, false},
		{`{"level":"error","logger":"server.fsm","msg":"apply failed: connection reset"}`, false},
		{`{"level":"error","logger":"server.serf.lan","msg":"memberlist: Conflicting address for s1"}`, false},
	} {
		var l logLine
		if err := json.Unmarshal([]byte(tc.line), &l); err != nil {
			t.Fatal(err)
		}
		if got := expectedError(l); got != tc.expected {
			t.Errorf("expectedError(%s) = %v, want %v", tc.line, got, tc.expected)
		}
	}
}
