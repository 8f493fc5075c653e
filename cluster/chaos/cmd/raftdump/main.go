// Command raftdump prints a Cairn server's Raft log and stable store, one
// entry a line, for comparing the logs of a chaos trial's nodes:
//
//	go run ./cluster/chaos/cmd/raftdump <data-dir> [<data-dir>...]
//
// Pebble replays and may rewrite its WAL on open, so each data dir is copied
// to a temporary directory first and the copy is opened; the original is
// never touched. A line is "<index> <term> <type> <command>", the command
// decoded with cluster/structs. With several dirs, -diff prints only the
// indexes at which the logs differ (an entry missing on a node counts).
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/fsm"
	"github.com/cairnd/cairn/cluster/raftstore"
	"github.com/cairnd/cairn/cluster/structs"
)

func main() {
	diff := flag.Bool("diff", false, "print only indexes where the given logs differ")
	replay := flag.String("replay", "", "apply each log to a fresh FSM and print this service's instances and the KV store")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: raftdump [-diff] <data-dir>...")
		os.Exit(2)
	}
	if *replay != "" {
		for _, dir := range flag.Args() {
			if err := replayDir(dir, *replay); err != nil {
				fmt.Fprintln(os.Stderr, "raftdump:", err)
				os.Exit(1)
			}
		}
		return
	}
	logs := make([]map[uint64]string, flag.NArg())
	var lo, hi uint64
	for i, dir := range flag.Args() {
		m, first, last, err := dump(dir, !*diff)
		if err != nil {
			fmt.Fprintln(os.Stderr, "raftdump:", err)
			os.Exit(1)
		}
		logs[i] = m
		if i == 0 || first < lo {
			lo = first
		}
		hi = max(hi, last)
	}
	if !*diff {
		return
	}
	n := 0
	for idx := lo; idx <= hi && idx != 0; idx++ {
		same := true
		for _, m := range logs[1:] {
			if m[idx] != logs[0][idx] {
				same = false
			}
		}
		if same {
			continue
		}
		n++
		fmt.Printf("index %d differs:\n", idx)
		for i, m := range logs {
			e, ok := m[idx]
			if !ok {
				e = "(absent)"
			}
			fmt.Printf("  %s: %s\n", flag.Arg(i), e)
		}
	}
	fmt.Printf("%d differing indexes in %d..%d\n", n, lo, hi)
}

// dump copies dir/raft, opens the copy and returns its entries by index.
func dump(dir string, print bool) (map[uint64]string, uint64, uint64, error) {
	tmp, err := os.MkdirTemp("", "raftdump-")
	if err != nil {
		return nil, 0, 0, err
	}
	defer os.RemoveAll(tmp)
	if err := copyDir(filepath.Join(dir, "raft"), tmp); err != nil {
		return nil, 0, 0, err
	}
	st, err := raftstore.Open(tmp, raftstore.Options{})
	if err != nil {
		return nil, 0, 0, err
	}
	defer st.Close()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if print {
		fmt.Printf("# %s first=%d last=%d", dir, first, last)
		for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
			v, err := st.GetUint64([]byte(k))
			fmt.Printf(" %s=%d%s", k, v, errSuffix(err))
		}
		v, err := st.Get([]byte("LastVoteCand"))
		fmt.Printf(" LastVoteCand=%q%s\n", v, errSuffix(err))
		if snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "snapshots", "*")); len(snaps) > 0 {
			sort.Strings(snaps)
			fmt.Printf("# snapshots: %s\n", strings.Join(snaps, " "))
		}
	}
	out := make(map[uint64]string)
	for idx := first; idx <= last && idx != 0; idx++ {
		var l raft.Log
		if err := st.GetLog(idx, &l); err != nil {
			out[idx] = "ERROR " + err.Error()
		} else {
			out[idx] = fmt.Sprintf("%d %s %s", l.Term, l.Type, describe(&l))
		}
		if print {
			fmt.Printf("%d %s\n", idx, out[idx])
		}
	}
	return out, first, last, nil
}

// replayDir applies dir's whole log (it must start at index 1: snapshots
// are not restored) to a fresh FSM and prints the resulting state.
func replayDir(dir, service string) error {
	tmp, err := os.MkdirTemp("", "raftdump-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := copyDir(filepath.Join(dir, "raft"), tmp); err != nil {
		return err
	}
	st, err := raftstore.Open(tmp, raftstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if first > 1 {
		return fmt.Errorf("%s: log starts at %d; replay needs it from 1", dir, first)
	}
	f := fsm.New(nil)
	for idx := first; idx <= last && idx != 0; idx++ {
		var l raft.Log
		if err := st.GetLog(idx, &l); err != nil {
			return fmt.Errorf("%s: log %d: %w", dir, idx, err)
		}
		f.Apply(&l)
	}
	s := f.State()
	_, sns := s.ServiceNodes(service, "")
	ids := make([]string, 0, len(sns))
	for _, sn := range sns {
		ids = append(ids, sn.ServiceID)
	}
	fmt.Printf("%s: replayed 1..%d: service %s: %v\n", dir, last, service, ids)
	_, kvs := s.KVSList("")
	for _, e := range kvs {
		if !strings.HasPrefix(e.Key, "u/") {
			fmt.Printf("  kv %s=%q @%d\n", e.Key, e.Value, e.ModifyIndex)
		}
	}
	fmt.Printf("  kv entries: %d\n", len(kvs))
	return nil
}

func errSuffix(err error) string {
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return ""
}

// describe decodes a command entry's payload.
func describe(l *raft.Log) string {
	if l.Type != raft.LogCommand {
		if l.Type == raft.LogConfiguration {
			c := raft.DecodeConfiguration(l.Data)
			return fmt.Sprintf("%v", c.Servers)
		}
		return ""
	}
	if len(l.Data) == 0 {
		return "empty"
	}
	t := structs.MessageType(l.Data[0]) &^ structs.IgnoreUnknownTypeFlag
	var v any
	switch t {
	case structs.RegisterRequestType:
		var r structs.RegisterRequest
		if err := structs.DecodeCommand(l.Data[1:], &r); err != nil {
			return "register ERROR " + err.Error()
		}
		svc := ""
		if r.Service != nil {
			svc = r.Service.ID
		}
		return fmt.Sprintf("register node=%s svc=%s", r.Node, svc)
	case structs.DeregisterRequestType:
		var r structs.DeregisterRequest
		if err := structs.DecodeCommand(l.Data[1:], &r); err != nil {
			return "deregister ERROR " + err.Error()
		}
		return fmt.Sprintf("deregister node=%s svc=%s check=%s", r.Node, r.ServiceID, r.CheckID)
	case structs.KVSRequestType:
		var r structs.KVSRequest
		if err := structs.DecodeCommand(l.Data[1:], &r); err != nil {
			return "kvs ERROR " + err.Error()
		}
		return fmt.Sprintf("kvs %s key=%s val=%q cas=%d", r.Op, r.DirEnt.Key, r.DirEnt.Value, r.DirEnt.ModifyIndex)
	default:
		v = l.Data[0]
	}
	return fmt.Sprintf("type %v len %d", v, len(l.Data))
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if d.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}
