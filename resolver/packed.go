package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Dep is one piece of catalog state a packed answer was built from: on a
// client agent, one cache entry. Serve runs on every packed hit, so it must
// be safe for concurrent use and must not allocate.
type Dep interface {
	// Version moves whenever what the dep answers changes or the dep is
	// dropped. 0 means there is nothing worth keeping (pending, empty or
	// dropped).
	Version() uint64
	// Serve reports whether an answer built from the dep at version ver
	// may be served now (same version, not past its freshness), and counts
	// the use as a hit of the dep.
	Serve(ver uint64) bool
}

// PackedCatalog is a Catalog whose answers the resolver may keep packed and
// answer again from bytes. Its lookups call NoteDep, with the ctx they were
// given, for every Dep their result came from: that ties a packed answer to
// exactly the state it shows, so the answer is dropped the moment any of it
// changes. Packed hits never reach the Catalog; CountPackedHits hands it
// their running total, so it can count them as its hits.
type PackedCatalog interface {
	Catalog
	CountPackedHits(total func() uint64)
}

// Packed-answer limits.
const (
	// rotations is how many differently shuffled packings of one answer
	// are kept; hits cycle through them so clients still see the order
	// vary.
	rotations = 4
	// packedShards spreads packed answers over copy-on-write maps, so an
	// insert copies only a small map and reads take no lock at all.
	packedShards = 256
	// maxPacked bounds packed answers; past it a shard is cleared (they are
	// rebuilt from the catalog on the next ask).
	maxPacked = 50000
	// maxDeps bounds how many Deps one packed answer may be tied to;
	// answers built from more are not kept.
	maxDeps = 8
)

// depVer is one Dep an answer was built from, at the version it read.
type depVer struct {
	dep Dep
	ver uint64
}

// depSet collects the Deps one answer is built from. It lives in the
// query's ctx and is used by the query's goroutine only.
type depSet struct {
	deps []depVer
	over bool // too many deps, or one not worth keeping
}

type depSetKey struct{}

// NoteDep ties the answer being built under ctx to d as it was at version
// ver. Read ver before the data the answer uses: a change in between then
// only costs a refill. Outside a packable UDP query it does nothing.
func NoteDep(ctx context.Context, d Dep, ver uint64) {
	r, _ := ctx.Value(depSetKey{}).(*depSet)
	if r == nil || r.over || slices.ContainsFunc(r.deps, func(x depVer) bool { return x.dep == d }) {
		return
	}
	if ver == 0 || len(r.deps) == maxDeps {
		r.over = true
		return
	}
	r.deps = append(r.deps, depVer{d, ver})
}

// packedStore holds packed answers by question.
type packedStore struct {
	seed   maphash.Seed
	shards [packedShards]packedShard
	n      atomic.Int64
}

type packedShard struct {
	mu sync.Mutex // writers only
	m  atomic.Pointer[map[uint64]*packedEntry]
}

// packedEntry is an immutable set of packed answers to one question. A
// client agent keeps one per name asked, so it is kept small: a 64-byte
// header, one buffer holding the key and every packing (one allocation
// of key plus answer for a single-record name) and its deps.
type packedEntry struct {
	// buf is the question's key, then the packings back to back; packing
	// i ends at ends[i]. Every packing's question carries the name as
	// first asked (letter case kept), which name returns.
	buf  []byte
	deps []depVer
	ends [rotations]uint16
	// keyLen ends the key in buf; nameLen is the question name's length.
	keyLen  uint16
	nameLen uint8
	// n is how many packings buf holds; want is how many make the entry
	// complete: rotations, or 1 for an answer with a single record
	// (every shuffle is the same).
	n, want  uint8
	caseFree bool
}

func (pe *packedEntry) key() []byte { return pe.buf[:pe.keyLen] }

// packing returns packing i (i < pe.n).
func (pe *packedEntry) packing(i int) []byte {
	start := int(pe.keyLen)
	if i > 0 {
		start = int(pe.ends[i-1])
	}
	return pe.buf[start:pe.ends[i]]
}

// name is the question name every packing carries.
func (pe *packedEntry) name() []byte {
	start := int(pe.keyLen) + headerLen
	return pe.buf[start : start+int(pe.nameLen)]
}

func newPackedStore() *packedStore {
	ps := &packedStore{seed: maphash.MakeSeed()}
	for i := range ps.shards {
		m := map[uint64]*packedEntry{}
		ps.shards[i].m.Store(&m)
	}
	return ps
}

func (ps *packedStore) shardFor(h uint64) *packedShard { return &ps.shards[h%packedShards] }

// lookup answers p from a packed entry into out, if one is valid. It does
// not allocate.
func (ps *packedStore) lookup(p []byte, q *question, turn uint32, out []byte) ([]byte, bool) {
	h := maphash.Bytes(ps.seed, q.key)
	pe := (*ps.shardFor(h).m.Load())[h]
	if pe == nil || !bytes.Equal(pe.key(), q.key) || pe.n < pe.want {
		return nil, false
	}
	name := p[headerLen:q.nameEnd]
	sameCase := bytes.Equal(name, pe.name())
	if !sameCase && !pe.caseFree {
		return nil, false
	}
	for _, d := range pe.deps {
		if !d.dep.Serve(d.ver) {
			return nil, false
		}
	}
	i := 0
	if pe.want == rotations {
		i = int(turn % rotations)
	}
	resp := pe.packing(i)
	out = append(out, resp...)
	out[0], out[1] = p[0], p[1]
	out[2] = out[2]&^flagRD | p[2]&flagRD
	out[3] = out[3]&^flagCD | p[3]&flagCD
	if !sameCase {
		copy(out[headerLen:], name)
	}
	return out, true
}

// store keeps resp as a packing of q's answer if it can be reused.
func (ps *packedStore) store(p []byte, q *question, resp []byte, rec *depSet) {
	if len(resp) < q.nameEnd+4 || rec.over || len(rec.deps) == 0 {
		return
	}
	if resp[3]&0x0F != dns.RcodeSuccess || resp[2]&flagTC != 0 || binary.BigEndian.Uint16(resp[6:]) == 0 {
		return // only positive, whole answers; negative ones carry a timed SOA
	}
	if !bytes.Equal(resp[headerLen:q.nameEnd+4], p[headerLen:q.nameEnd+4]) {
		return
	}
	for _, d := range rec.deps {
		if d.dep.Version() != d.ver {
			return // changed while we answered
		}
	}
	name := p[headerLen:q.nameEnd]
	h := maphash.Bytes(ps.seed, q.key)
	s := ps.shardFor(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	cur := old[h]
	free := caseFree(resp, q.nameEnd)
	var ne *packedEntry
	if cur != nil && bytes.Equal(cur.key(), q.key) && sameDeps(cur, rec) {
		if cur.n >= cur.want || len(cur.buf)+len(resp) > math.MaxUint16 {
			return
		}
		start := len(cur.buf)
		buf := slices.Concat(cur.buf, resp)
		if !bytes.Equal(name, cur.name()) {
			// Asked in another letter case. Every packing of an entry
			// carries the entry's name (lookup serves it as is to an
			// asker in that case), so this one may join only if the
			// name is in its question alone, rewritten to the entry's.
			if !cur.caseFree || !free {
				return
			}
			copy(buf[start+headerLen:], cur.name())
		}
		c := *cur
		ne = &c
		ne.buf, ne.caseFree = buf, cur.caseFree && free
		ne.ends[ne.n] = uint16(len(buf))
		ne.n++
	} else {
		if len(q.key)+len(resp) > math.MaxUint16 {
			return
		}
		buf := slices.Concat(q.key, resp)
		ne = &packedEntry{buf: buf, deps: rec.deps, keyLen: uint16(len(q.key)),
			nameLen: uint8(len(name)), n: 1, want: rotations, caseFree: free}
		ne.ends[0] = uint16(len(buf))
		// One answer record and at most one additional (EDNS's OPT):
		// nothing for a shuffle to reorder, so one packing serves every
		// turn.
		if binary.BigEndian.Uint16(resp[6:]) == 1 && binary.BigEndian.Uint16(resp[8:]) == 0 && binary.BigEndian.Uint16(resp[10:]) <= 1 {
			ne.want = 1
		}
	}
	m := make(map[uint64]*packedEntry, len(old)+1)
	if ps.n.Load() < maxPacked {
		for k, v := range old {
			m[k] = v
		}
	} else {
		ps.n.Add(-int64(len(old)))
	}
	if _, ok := m[h]; !ok {
		ps.n.Add(1)
	}
	m[h] = ne
	s.m.Store(&m)
}

func sameDeps(pe *packedEntry, rec *depSet) bool {
	return slices.Equal(pe.deps, rec.deps)
}

// reader is one UDP reader's count of packed hits, on its own cache line
// so readers never share one.
type reader struct {
	hits atomic.Uint64
	_    [56]byte
}

// packedHits is the number of questions answered from packed bytes.
func (s *Server) packedHits() uint64 {
	var n uint64
	for i := range s.readers {
		n += s.readers[i].hits.Load()
	}
	return n
}
