package http

import (
	nethttp "net/http"

	"github.com/hashicorp/go-bexpr"
)

// maxFilterParseSteps bounds the parser's work on one ?filter (go-bexpr's
// WithMaxExpressions counts grammar steps, about 70 per character): 10^6
// admits some 14 KB of expression, far beyond real filters (a five-clause
// filter takes ~10^4), and keeps a hostile query string to milliseconds.
const maxFilterParseSteps = 1_000_000

// filter is a parsed ?filter expression (Consul's go-bexpr syntax), or nil
// when the request has none: a nil filter keeps every row.
type filter struct {
	eval *bexpr.Evaluator
}

// parseFilter reads ?filter. A bad expression is a 400 with the parser's
// message, before any backend call.
func parseFilter(r *nethttp.Request) (*filter, error) {
	expr := r.URL.Query().Get("filter")
	if expr == "" {
		return nil, nil
	}
	ev, err := bexpr.CreateEvaluator(consulChecksSelectors(expr), bexpr.WithMaxExpressions(maxFilterParseSteps))
	if err != nil {
		return nil, badRequest("Failed to create boolean expression evaluator: %v", err)
	}
	return &filter{eval: ev}, nil
}

// match evaluates the filter on one row. Selectors are the row's Go field
// names, which are Consul's JSON names and so Consul's selectors. A
// selector the row does not have is the caller's error (400).
func (f *filter) match(row any) (bool, error) {
	if f == nil {
		return true, nil
	}
	ok, err := f.eval.Evaluate(row)
	if err != nil {
		return false, badRequest("Failed to apply filter: %v", err)
	}
	return ok, nil
}

// filterSlice keeps the rows the filter matches, in order, in a new slice
// (rows may be the state store's on a server agent: never written).
func filterSlice[T any](f *filter, rows []T) ([]T, error) {
	if f == nil {
		return rows, nil
	}
	out := make([]T, 0, len(rows))
	for _, row := range rows {
		ok, err := f.match(row)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, row)
		}
	}
	return out, nil
}

// filterMap keeps the entries whose value the filter matches, in a new map.
func filterMap[K comparable, V any](f *filter, m map[K]V) (map[K]V, error) {
	if f == nil {
		return m, nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		ok, err := f.match(v)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = v
		}
	}
	return out, nil
}
