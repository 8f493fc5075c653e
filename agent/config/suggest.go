package config

import (
	"reflect"
	"strings"
)

// closestKey is the key of struct type t that an unknown key most likely
// misspells, spelt as Consul's files spell it (the json tag), or "" when
// none is close: the edit distance between the normalised spellings must
// be at most 1 + len/5 (capped at 3), so "chek" finds "check" and
// "datacentre" finds "datacenter". Only keys of the same object compete.
func closestKey(t reflect.Type, key string) string {
	t = deref(t)
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	norm := normalizeKey(key)
	limit := min(1+len(norm)/5, 3)
	best, bestDist := "", limit+1
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if d := editDistance(norm, normalizeKey(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b:
// Levenshtein plus adjacent transpositions ("prot" is one edit from
// "port"), on bytes (keys are ASCII).
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	pp, prev, cur := rows[0], rows[1], rows[2]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}
