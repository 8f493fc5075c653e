package state

import (
	"sort"
	"strings"
)

// Chunk bounds of sortedKeys: a chunk splits when it grows past maxChunk, so
// an insert moves at most maxChunk strings and the chunk directory stays
// n/minChunk entries long. 512 keeps a chunk's memmove within a few KiB.
const (
	maxChunk = 512
	minChunk = maxChunk / 2
)

// sortedKeys is an ordered set of strings kept as a list of sorted chunks: a
// two-level structure giving O(sqrt n)-ish inserts and deletes with ordered
// prefix scans, without a tree's per-node allocations.
type sortedKeys struct {
	chunks [][]string
	n      int
}

// chunkFor returns the index of the chunk that does or would contain k.
func (s *sortedKeys) chunkFor(k string) int {
	i := sort.Search(len(s.chunks), func(i int) bool {
		c := s.chunks[i]
		return c[len(c)-1] >= k
	})
	if i == len(s.chunks) && i > 0 {
		i--
	}
	return i
}

// insert adds k; it reports false if k was present.
func (s *sortedKeys) insert(k string) bool {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []string{k})
		s.n++
		return true
	}
	ci := s.chunkFor(k)
	c := s.chunks[ci]
	j := sort.SearchStrings(c, k)
	if j < len(c) && c[j] == k {
		return false
	}
	c = append(c, "")
	copy(c[j+1:], c[j:])
	c[j] = k
	s.n++
	if len(c) <= maxChunk {
		s.chunks[ci] = c
		return true
	}
	// Split: the upper half gets its own backing array so the two chunks
	// never share capacity.
	hi := make([]string, len(c)-minChunk, maxChunk)
	copy(hi, c[minChunk:])
	clear(c[minChunk:])
	s.chunks[ci] = c[:minChunk]
	s.chunks = append(s.chunks, nil)
	copy(s.chunks[ci+2:], s.chunks[ci+1:])
	s.chunks[ci+1] = hi
	return true
}

// remove deletes k; it reports false if k was absent.
func (s *sortedKeys) remove(k string) bool {
	if len(s.chunks) == 0 {
		return false
	}
	ci := s.chunkFor(k)
	c := s.chunks[ci]
	j := sort.SearchStrings(c, k)
	if j == len(c) || c[j] != k {
		return false
	}
	copy(c[j:], c[j+1:])
	c[len(c)-1] = ""
	c = c[:len(c)-1]
	s.n--
	if len(c) == 0 {
		copy(s.chunks[ci:], s.chunks[ci+1:])
		s.chunks[len(s.chunks)-1] = nil
		s.chunks = s.chunks[:len(s.chunks)-1]
		return true
	}
	s.chunks[ci] = c
	return true
}

// ascendPrefix calls fn for every key with prefix in order until fn
// returns false.
func (s *sortedKeys) ascendPrefix(prefix string, fn func(k string) bool) {
	if len(s.chunks) == 0 {
		return
	}
	ci := s.chunkFor(prefix)
	j := sort.SearchStrings(s.chunks[ci], prefix)
	for ; ci < len(s.chunks); ci, j = ci+1, 0 {
		c := s.chunks[ci]
		for ; j < len(c); j++ {
			if !strings.HasPrefix(c[j], prefix) {
				return
			}
			if !fn(c[j]) {
				return
			}
		}
	}
}

// all returns every key in order.
func (s *sortedKeys) all() []string {
	out := make([]string, 0, s.n)
	for _, c := range s.chunks {
		out = append(out, c...)
	}
	return out
}

// hasPrefix reports whether any key starts with prefix.
func (s *sortedKeys) hasPrefix(prefix string) bool {
	found := false
	s.ascendPrefix(prefix, func(string) bool {
		found = true
		return false
	})
	return found
}
