package resolver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/miekg/dns"
)

// fakeDep is one piece of catalog state whose version a test moves.
type fakeDep struct{ ver atomic.Uint64 }

func (d *fakeDep) Version() uint64       { return d.ver.Load() }
func (d *fakeDep) Serve(ver uint64) bool { return d.ver.Load() == ver }

// packedCatalog is a PackedCatalog: benchCatalog's service, tied to one
// fakeDep, with a count of the lookups that reached it.
type packedCatalog struct {
	benchCatalog
	dep     fakeDep
	insts   atomic.Pointer[[]Instance]
	lookups atomic.Int64
	hits    func() uint64
}

func newPackedCatalog() *packedCatalog {
	c := &packedCatalog{}
	insts := benchInstances()
	c.insts.Store(&insts)
	c.dep.ver.Store(1)
	return c
}

func (c *packedCatalog) ServiceNodes(ctx context.Context, _, service, _ string, _ bool, dst []Instance) ([]Instance, error) {
	c.lookups.Add(1)
	NoteDep(ctx, &c.dep, c.dep.Version()) // version before data
	if service != "web" {
		return dst, nil
	}
	return append(dst, *c.insts.Load()...), nil
}

func (c *packedCatalog) CountPackedHits(total func() uint64) { c.hits = total }

func startPacked(t testing.TB, cat Catalog) *Server {
	t.Helper()
	cfg := testConfig()
	cfg.UDPReaders = 1
	return startServerOn(t, cfg, cat, nil)
}

func askA(t testing.TB, s *Server, network string) *dns.Msg {
	t.Helper()
	r, _ := exchange(t, network, s, "web.service.consul.", dns.TypeA)
	return r
}

// waitPackings waits until the store holds n packings: a reader stores the
// packing of an answer after it has sent it, so a client can ask again
// before the previous packing is in.
func waitPackings(t testing.TB, s *Server, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "packed answers stored", func() error {
		have := 0
		for i := range s.packed.shards {
			for _, pe := range *s.packed.shards[i].m.Load() {
				have += int(pe.n)
			}
		}
		if have < n {
			return fmt.Errorf("%d of %d packings stored", have, n)
		}
		return nil
	})
}

// TestPackedAnswers: a question asked again over UDP is answered from
// packed bytes without reaching the Catalog, until a Dep it was built from
// moves; TCP and Deps at version 0 are never packed.
func TestPackedAnswers(t *testing.T) {
	cat := newPackedCatalog()
	s := startPacked(t, cat)
	if cat.hits == nil {
		t.Fatal("CountPackedHits not called")
	}
	for range rotations {
		askA(t, s, "udp") // fills the rotations of shuffled packings
	}
	waitPackings(t, s, rotations)
	before := cat.lookups.Load()
	for range 10 {
		if r := askA(t, s, "udp"); len(r.Answer) != 3 {
			t.Fatalf("packed answer: %v", r)
		}
	}
	if n := cat.lookups.Load() - before; n != 0 || cat.hits() != 10 {
		t.Fatalf("after warm-up: %d lookups, %d packed hits; want 0 and 10", n, cat.hits())
	}

	// The Dep moves with the data: the next answer is built afresh.
	two := benchInstances()[:2]
	cat.insts.Store(&two)
	cat.dep.ver.Add(1)
	if r := askA(t, s, "udp"); len(r.Answer) != 2 {
		t.Fatalf("answer after the dep moved: %d records, want 2", len(r.Answer))
	}

	before = cat.lookups.Load()
	askA(t, s, "tcp")
	askA(t, s, "tcp")
	if n := cat.lookups.Load() - before; n != 2 {
		t.Fatalf("TCP: %d lookups for 2 queries", n)
	}

	cat.dep.ver.Store(0) // nothing worth keeping
	before = cat.lookups.Load()
	for range rotations + 2 {
		askA(t, s, "udp")
	}
	if n := cat.lookups.Load() - before; n != rotations+2 {
		t.Fatalf("dep at version 0: %d lookups for %d queries", n, rotations+2)
	}
}

// TestNotPackedWithoutPackedCatalog: a plain Catalog (servers' state
// store) answers every query itself.
func TestNotPackedWithoutPackedCatalog(t *testing.T) {
	cat := &benchCatalog{insts: benchInstances()}
	s := startPacked(t, cat)
	if s.packed != nil {
		t.Fatal("packed store for a plain Catalog")
	}
	for range rotations + 2 {
		if r := askA(t, s, "udp"); len(r.Answer) != 3 {
			t.Fatalf("answer %v", r)
		}
	}
	if s.packedHits() != 0 {
		t.Fatal("packed hits without a PackedCatalog")
	}
}

// BenchmarkPackedHit measures the packed hit path without sockets: parse
// the query, find the packed answer, check its Dep, patch it. It must not
// allocate.
func BenchmarkPackedHit(b *testing.B) {
	s := startPacked(b, newPackedCatalog())
	for range rotations {
		askA(b, s, "udp")
	}
	waitPackings(b, s, rotations)
	m := new(dns.Msg)
	m.SetQuestion("web.service.consul.", dns.TypeA)
	p, _ := m.Pack()
	var q question
	var kb [maxKeyLen]byte
	out := make([]byte, 0, udpReadSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !parseQuery(p, &q, &kb) {
			b.Fatal("not a plain query")
		}
		if _, ok := s.packed.lookup(p, &q, uint32(i), out[:0]); !ok {
			b.Fatal("miss")
		}
	}
}

// TestPackedAnswersKeepAskedCase: whatever letter case the packings of a
// shuffled answer were first asked in, a packed answer's question and
// owner names are the asker's own, byte for byte (resolvers using 0x20
// case randomisation drop answers whose question differs in case).
func TestPackedAnswersKeepAskedCase(t *testing.T) {
	cat := newPackedCatalog()
	s := startPacked(t, cat)
	// The rotations are packed from questions asked in different cases.
	fills := []string{"Web.service.consul.", "web.service.consul.", "WEB.service.consul.", "wEb.service.consul."}
	for i := range len(fills) * rotations {
		exchange(t, "udp", s, fills[i%len(fills)], dns.TypeA)
	}
	waitPackings(t, s, rotations)
	before := cat.hits()
	for _, name := range append(fills, "web.SERVICE.consul.") {
		for range 2 * rotations { // every turn of the rotation
			r, _ := exchange(t, "udp", s, name, dns.TypeA)
			if len(r.Question) != 1 || r.Question[0].Name != name {
				t.Fatalf("asked %q: question %v", name, r.Question)
			}
			if len(r.Answer) != 3 {
				t.Fatalf("asked %q: %d answers, want 3", name, len(r.Answer))
			}
			for _, rr := range r.Answer {
				if rr.Header().Name != name {
					t.Fatalf("asked %q: answer owner %q", name, rr.Header().Name)
				}
			}
		}
	}
	if cat.hits() == before {
		t.Fatal("no answer came from the packed store")
	}
}

// TestPackedEntrySize: a packed entry (one per name a client agent was
// asked) keeps its 64-byte header; key and packings share one buffer, and
// each dep is one element with its version.
func TestPackedEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(packedEntry{}); n > 64 {
		t.Fatalf("packedEntry is %d bytes, want at most 64", n)
	}
}

// TestPackedRotations: hits cycle through every stored packing of a
// shuffled answer, each served whole (the packings share one buffer).
func TestPackedRotations(t *testing.T) {
	cat := newPackedCatalog()
	s := startPacked(t, cat)
	for range rotations {
		askA(t, s, "udp")
	}
	waitPackings(t, s, rotations)
	order := func(m *dns.Msg) string {
		var o string
		for _, rr := range m.Answer {
			o += rr.(*dns.A).A.String() + " "
		}
		return o
	}
	stored := map[string]bool{}
	for i := range s.packed.shards {
		for _, pe := range *s.packed.shards[i].m.Load() {
			for j := range int(pe.n) {
				m := new(dns.Msg)
				if err := m.Unpack(pe.packing(j)); err != nil {
					t.Fatalf("packing %d: %v", j, err)
				}
				stored[order(m)] = true
			}
		}
	}
	served := map[string]bool{}
	for range 4 * rotations {
		o := order(askA(t, s, "udp"))
		if !stored[o] {
			t.Fatalf("served order %q is none of the stored packings %v", o, stored)
		}
		served[o] = true
	}
	if len(served) != len(stored) {
		t.Fatalf("served %d of %d stored orders", len(served), len(stored))
	}
}
