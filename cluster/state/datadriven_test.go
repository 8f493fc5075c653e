package state

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

var update = flag.Bool("update", false, "rewrite testdata expectations with the actual output")

// ddCase is one command of a testdata file and the output expected of it.
type ddCase struct {
	comments []string
	line     int
	cmd      string
	expected string
}

// parseDD reads the pebble-datadriven-like format: a command line, a
// "----" line, the expected output up to a blank line. Lines starting with
// '#' between cases are comments.
func parseDD(t *testing.T, path string) []ddCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var cases []ddCase
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "#") {
			comments = append(comments, l)
			continue
		}
		c := ddCase{comments: comments, line: i + 1, cmd: l}
		comments = nil
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", path, i+1, l)
		}
		i += 2
		var out []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			out = append(out, lines[i])
		}
		c.expected = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases
}

func writeDD(t *testing.T, path string, cases []ddCase) {
	t.Helper()
	var b strings.Builder
	for _, c := range cases {
		for _, l := range c.comments {
			fmt.Fprintf(&b, "%s\n", l)
		}
		fmt.Fprintf(&b, "%s\n----\n%s\n\n", c.cmd, c.expected)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases := parseDD(t, path)
			r := &ddRunner{s: New()}
			for i := range cases {
				got := strings.TrimRight(r.run(t, cases[i].cmd), "\n")
				if *update {
					cases[i].expected = got
					continue
				}
				if got != cases[i].expected {
					t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", path, cases[i].line, cases[i].cmd, got, cases[i].expected)
				}
			}
			if *update {
				writeDD(t, path, cases)
			}
		})
	}
}

type ddRunner struct {
	s   *Store
	idx uint64
	// watches are the channels armed by "watch", by name.
	watches map[string]<-chan struct{}
}

// ddKey reads the one watch key of a command: svc=, node=, kv= or
// tables=a,b.
func ddKey(t *testing.T, a map[string][]string) Key {
	switch {
	case a["svc"] != nil:
		return ServiceKey(one(a, "svc"))
	case a["node"] != nil:
		return NodeKey(one(a, "node"))
	case a["kv"] != nil:
		return KVPrefixKey(one(a, "kv"))
	case a["tables"] != nil:
		var ts []Table
		for _, name := range list(one(a, "tables")) {
			tb := slices.IndexFunc([]Table{TableNodes, TableServices, TableChecks, TableKVS, TableSessions}, func(tb Table) bool { return tb.String() == name })
			if tb < 0 {
				t.Fatalf("unknown table %q", name)
			}
			ts = append(ts, Table(tb))
		}
		return TablesKey(ts...)
	}
	t.Fatal("want svc=, node=, kv= or tables=")
	return Key{}
}

// args splits "cmd k=v k2 ..." into the command and its arguments; a bare
// word maps to "".
func ddArgs(line string) (string, map[string][]string) {
	f := strings.Fields(line)
	a := make(map[string][]string)
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		a[k] = append(a[k], v)
	}
	return f[0], a
}

func one(a map[string][]string, k string) string {
	if v := a[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func num(t *testing.T, a map[string][]string, k string) uint64 {
	v := one(a, k)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("bad %s=%q", k, v)
	}
	return n
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// parseCheck reads id:status[:serviceID].
func parseCheck(s string) *structs.HealthCheck {
	p := strings.Split(s, ":")
	c := &structs.HealthCheck{CheckID: p[0], Name: p[0]}
	if len(p) > 1 {
		c.Status = p[1]
	}
	if len(p) > 2 {
		c.ServiceID = p[2]
	}
	return c
}

func result(idx uint64, err error) string {
	if err != nil {
		return fmt.Sprintf("idx=%d error: %v", idx, err)
	}
	return fmt.Sprintf("idx=%d ok", idx)
}

func (r *ddRunner) run(t *testing.T, line string) string {
	cmd, a := ddArgs(line)
	write := func() uint64 { r.idx++; return r.idx }
	switch cmd {
	case "register":
		req := &structs.RegisterRequest{
			Node: one(a, "node"), Address: one(a, "addr"), ID: one(a, "id"),
			SkipNodeUpdate: a["skip-node-update"] != nil,
		}
		if m := one(a, "meta"); m != "" {
			req.NodeMeta = map[string]string{}
			for _, kv := range list(m) {
				k, v, _ := strings.Cut(kv, ":")
				req.NodeMeta[k] = v
			}
		}
		if svc := one(a, "svc"); svc != "" {
			req.Service = &structs.NodeService{Service: svc, ID: one(a, "svc-id"), Tags: list(one(a, "tags")), Port: int(num(t, a, "port"))}
		}
		for _, c := range a["check"] {
			req.Checks = append(req.Checks, parseCheck(c))
		}
		idx := write()
		return result(idx, r.s.EnsureRegistration(idx, req))
	case "deregister":
		idx := write()
		return result(idx, r.s.Deregister(idx, &structs.DeregisterRequest{Node: one(a, "node"), ServiceID: one(a, "svc"), CheckID: one(a, "check")}))
	case "kv-set":
		idx := write()
		return result(idx, r.s.KVSSet(idx, &structs.DirEntry{Key: one(a, "key"), Value: []byte(one(a, "value")), Flags: num(t, a, "flags")}))
	case "kv-cas":
		idx := write()
		ok, err := r.s.KVSSetCAS(idx, &structs.DirEntry{Key: one(a, "key"), Value: []byte(one(a, "value")), ModifyIndex: num(t, a, "index")})
		return fmt.Sprintf("%s success=%v", result(idx, err), ok)
	case "kv-delete":
		idx := write()
		return result(idx, r.s.KVSDelete(idx, one(a, "key")))
	case "kv-delete-cas":
		idx := write()
		ok, err := r.s.KVSDeleteCAS(idx, num(t, a, "index"), one(a, "key"))
		return fmt.Sprintf("%s success=%v", result(idx, err), ok)
	case "kv-delete-tree":
		idx := write()
		return result(idx, r.s.KVSDeleteTree(idx, one(a, "prefix")))
	case "kv-reap":
		idx := write()
		n := r.s.ReapTombstones(idx, num(t, a, "bound"))
		return fmt.Sprintf("idx=%d reaped=%d", idx, n)
	case "kv-keys":
		idx, keys := r.s.KVSListKeys(one(a, "prefix"), one(a, "sep"))
		return fmt.Sprintf("index=%d keys=%v", idx, keys)
	case "services":
		idx, svcs := r.s.Services()
		var b strings.Builder
		fmt.Fprintf(&b, "index=%d\n", idx)
		for _, name := range sortedKeysOf(svcs) {
			fmt.Fprintf(&b, "%s %v\n", name, svcs[name])
		}
		return b.String()
	case "health":
		idx, csns := r.s.CheckServiceNodes(one(a, "svc"), one(a, "tag"), a["passing"] != nil)
		var b strings.Builder
		fmt.Fprintf(&b, "index=%d\n", idx)
		for _, c := range csns {
			fmt.Fprintf(&b, "%s/%s %s checks=", c.Node.Node, c.Service.ID, c.AggregatedStatus())
			for i, hc := range c.Checks {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s:%s", hc.CheckID, hc.Status)
			}
			b.WriteByte('\n')
		}
		return b.String()
	case "dump":
		return dump(r.s)
	case "session-create", "session-destroy", "kv-lock", "kv-unlock", "sessions", "kv-get":
		return r.runSession(t, cmd, a, write)
	case "index", "watch", "fired":
		return r.runWatch(t, cmd, line, a)
	}
	t.Fatalf("unknown command %q", cmd)
	return ""
}

// runWatch runs the index and watch commands: "index svc=X" (node=, kv=,
// kv=P get) prints the index reads of the key report; "watch name key"
// arms a watch; "fired" lists the armed watches that fired (forgetting
// them) and those still waiting.
func (r *ddRunner) runWatch(t *testing.T, cmd, line string, a map[string][]string) string {
	switch cmd {
	case "index":
		// The index each read of the key reports.
		k := ddKey(t, a)
		var idx uint64
		switch k.kind {
		case kindService:
			idx, _ = r.s.CheckServiceNodes(k.name, "", false)
			if i2, _ := r.s.ServiceNodes(k.name, ""); i2 != idx {
				t.Fatalf("service %s: health index %d, catalog index %d", k.name, idx, i2)
			}
		case kindNode:
			idx, _ = r.s.NodeServices(k.name)
			if i2, _ := r.s.NodeChecks(k.name); i2 != idx {
				t.Fatalf("node %s: services index %d, checks index %d", k.name, idx, i2)
			}
		case kindKVPrefix:
			if a["get"] != nil {
				idx, _ = r.s.KVSGet(k.name)
				return fmt.Sprintf("get %s index=%d", k.name, idx)
			}
			idx, _ = r.s.KVSList(k.name)
			if i2, _ := r.s.KVSListKeys(k.name, ""); i2 != idx {
				t.Fatalf("kv %s: list index %d, keys index %d", k.name, idx, i2)
			}
		default:
			t.Fatal("index takes svc=, node= or kv=")
		}
		return fmt.Sprintf("%s index=%d", k, idx)
	case "watch":
		// watch name svc=X arms a watch; "fired" reports which closed.
		if r.watches == nil {
			r.watches = map[string]<-chan struct{}{}
		}
		name := strings.Fields(line)[1]
		r.watches[name] = r.s.WatchKey(ddKey(t, a))
		return "ok"
	case "fired":
		// Lists the armed watches that fired (and forgets them) and those
		// still waiting.
		var fired, waiting []string
		for _, name := range sortedKeysOf(r.watches) {
			select {
			case <-r.watches[name]:
				fired = append(fired, name)
				delete(r.watches, name)
			default:
				waiting = append(waiting, name)
			}
		}
		return fmt.Sprintf("fired=%v waiting=%v", fired, waiting)
	}
	return ""
}

func sortedKeysOf[V any](m map[string]V) []string {
	var sk sortedKeys
	for k := range m {
		sk.insert(k)
	}
	return sk.all()
}

// runSession runs the session and lock commands: "session-create id= node=
// [checks=a,b] [svc-checks=c] [behavior=] [delay=1s]", "session-destroy
// id=", "kv-lock key= session= [value=]", "kv-unlock key= session=",
// "sessions" (every session, then the held keys) and "kv-get key=".
func (r *ddRunner) runSession(t *testing.T, cmd string, a map[string][]string, write func() uint64) string {
	switch cmd {
	case "session-create":
		sess := &structs.Session{ID: one(a, "id"), Node: one(a, "node"), NodeChecks: list(one(a, "checks")), Behavior: one(a, "behavior")}
		for _, c := range list(one(a, "svc-checks")) {
			sess.ServiceChecks = append(sess.ServiceChecks, structs.ServiceCheck{ID: c})
		}
		if d := one(a, "delay"); d != "" {
			var err error
			if sess.LockDelay, err = time.ParseDuration(d); err != nil {
				t.Fatalf("bad delay %q", d)
			}
		}
		idx := write()
		return result(idx, r.s.SessionCreate(idx, sess))
	case "session-destroy":
		idx := write()
		return result(idx, r.s.SessionDestroy(idx, one(a, "id")))
	case "kv-lock", "kv-unlock":
		op := r.s.KVSLock
		if cmd == "kv-unlock" {
			op = r.s.KVSUnlock
		}
		idx := write()
		ok, err := op(idx, &structs.DirEntry{Key: one(a, "key"), Session: one(a, "session"), Value: []byte(one(a, "value"))})
		return fmt.Sprintf("%s success=%v", result(idx, err), ok)
	case "sessions":
		idx, all := r.s.SessionList()
		var b strings.Builder
		fmt.Fprintf(&b, "index=%d\n", idx)
		for _, s := range all {
			fmt.Fprintf(&b, "%s node=%s behavior=%s checks=%v create=%d\n", s.ID, s.Node, s.Behavior, s.CheckIDs(), s.CreateIndex)
		}
		return b.String()
	case "kv-get":
		k := one(a, "key")
		idx, e := r.s.KVSGet(k)
		delayed := r.s.KVSLockDelay(k).After(time.Now())
		if e == nil {
			return fmt.Sprintf("index=%d absent lock-delay=%v", idx, delayed)
		}
		return fmt.Sprintf("index=%d value=%s session=%q lock-index=%d create=%d modify=%d lock-delay=%v",
			idx, e.Value, e.Session, e.LockIndex, e.CreateIndex, e.ModifyIndex, delayed)
	}
	return ""
}
