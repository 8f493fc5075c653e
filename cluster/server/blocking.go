package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// readEndpoint returns the registration of one read method: key names the
// state the read watches, run fills the reply from a Store and returns the
// index it reflects. Blocking calls (MinQueryIndex > 0) are shared.
func readEndpoint[A, R any](method string, key func(*A) state.Key, run func(*state.Store, *A, *R) uint64) func(*Server, *blockGroup) {
	if _, q := readParts(new(A)); q == nil {
		panic(fmt.Sprintf("server: %s: %T is not a read request", method, new(A)))
	}
	if replyMeta(new(R)) == nil {
		panic(fmt.Sprintf("server: %s: %T is not a read reply", method, new(R)))
	}
	return func(s *Server, g *blockGroup) {
		once := func(ctx context.Context, a *A, r *R) error {
			dc, q := readParts(a)
			return s.read(ctx, method, dc, q, replyMeta(r), a, r, key(a), func(st *state.Store) (uint64, error) {
				return run(st, a, r), nil
			})
		}
		handle(s, method, func(ctx context.Context, a *A, r *R) error {
			if _, q := readParts(a); q.MinQueryIndex == 0 {
				return once(ctx, a, r)
			}
			// Identical args (index, wait and consistency included) give
			// identical answers: one flight serves every caller.
			args := *a
			res, err := g.do(ctx, fmt.Sprintf("%s %#v", method, args), func(ctx context.Context) (any, error) {
				out := new(R)
				return out, once(ctx, &args, out)
			})
			if err != nil {
				return err
			}
			*r = *res.(*R)
			cloneReply(r)
			return nil
		})
	}
}

// readParts returns a read request's datacenter and query options (nil
// options for anything else).
func readParts(a any) (string, *structs.QueryOptions) {
	switch a := a.(type) {
	case *structs.DCSpecificRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.ServiceSpecificRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.NodeSpecificRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.ChecksInStateRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.KeyRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.SessionSpecificRequest:
		return a.Datacenter, &a.QueryOptions
	case *structs.PreparedQuerySpecificRequest:
		return a.Datacenter, &a.QueryOptions
	}
	return "", nil
}

// replyMeta returns a read reply's QueryMeta (nil for anything else).
func replyMeta(r any) *structs.QueryMeta {
	switch r := r.(type) {
	case *structs.IndexedNodes:
		return &r.QueryMeta
	case *structs.IndexedServices:
		return &r.QueryMeta
	case *structs.IndexedServiceNodes:
		return &r.QueryMeta
	case *structs.IndexedCheckServiceNodes:
		return &r.QueryMeta
	case *structs.IndexedNodeServices:
		return &r.QueryMeta
	case *structs.IndexedHealthChecks:
		return &r.QueryMeta
	case *structs.IndexedDirEntries:
		return &r.QueryMeta
	case *structs.IndexedKeyList:
		return &r.QueryMeta
	case *structs.IndexedSessions:
		return &r.QueryMeta
	case *structs.IndexedPreparedQueries:
		return &r.QueryMeta
	case *structs.IndexedCoordinates:
		return &r.QueryMeta
	}
	return nil
}

// cloneReply gives a caller of a shared read its own top-level slices and
// maps, so what one caller does to its reply (the HTTP layer normalises
// nil slices in place) never reaches another. Entries stay shared and
// read-only, as cluster/state hands them out.
func cloneReply(r any) {
	switch r := r.(type) {
	case *structs.IndexedNodes:
		r.Nodes = slices.Clone(r.Nodes)
	case *structs.IndexedServices:
		r.Services = maps.Clone(r.Services)
	case *structs.IndexedServiceNodes:
		r.ServiceNodes = slices.Clone(r.ServiceNodes)
	case *structs.IndexedCheckServiceNodes:
		r.Nodes = slices.Clone(r.Nodes)
	case *structs.IndexedNodeServices:
		if r.NodeServices != nil {
			ns := *r.NodeServices
			ns.Services = maps.Clone(ns.Services)
			r.NodeServices = &ns
		}
	case *structs.IndexedHealthChecks:
		r.HealthChecks = slices.Clone(r.HealthChecks)
	case *structs.IndexedDirEntries:
		r.Entries = slices.Clone(r.Entries)
	case *structs.IndexedKeyList:
		r.Keys = slices.Clone(r.Keys)
	case *structs.IndexedSessions:
		r.Sessions = slices.Clone(r.Sessions)
	case *structs.IndexedPreparedQueries:
		r.Queries = slices.Clone(r.Queries)
	case *structs.IndexedCoordinates:
		r.Coordinates = slices.Clone(r.Coordinates)
	}
}

// blockGroup shares identical concurrent blocking reads, as Consul's
// shared blocking queries (hashicorp/consul#5050): the first caller starts
// a flight, later callers with the same key join it, and all get its one
// result, from one watch and one evaluation per wake. A flight runs on its
// own goroutine, owned by the group, under a context that ends with the
// server or when its last caller has gone, so no caller's cancellation
// cuts the others short. A flight leaves the map when it finishes: a caller
// arriving later starts a new one (with the index it holds, that returns at
// once if the data moved).
type blockGroup struct {
	ctx     context.Context
	started prometheus.Counter
	joined  prometheus.Counter

	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done    chan struct{}
	res     any
	err     error
	waiters int // callers still waiting; guarded by blockGroup.mu
	cancel  context.CancelFunc
}

func newBlockGroup(ctx context.Context, reg prometheus.Registerer, log *zap.Logger) *blockGroup {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_rpc_blocking_queries_total",
		Help: "Blocking reads served by this server; shared=\"true\" joined an identical read already waiting.",
	}, []string{"shared"})
	if err := reg.Register(queries); err != nil {
		log.Warn("metric registration", zap.Error(err))
	}
	return &blockGroup{
		ctx:     ctx,
		started: queries.WithLabelValues("false"),
		joined:  queries.WithLabelValues("true"),
		flights: make(map[string]*flight),
	}
}

// do returns the result of fn for key, running it once for all concurrent
// callers of the same key. A caller whose ctx ends leaves with ctx.Err().
func (g *blockGroup) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	g.mu.Lock()
	f := g.flights[key]
	if f != nil {
		f.waiters++
		g.mu.Unlock()
		g.joined.Inc()
	} else {
		fctx, cancel := context.WithCancel(g.ctx)
		f = &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
		g.flights[key] = f
		g.mu.Unlock()
		g.started.Inc()
		go func() {
			defer cancel()
			res, err := fn(fctx)
			g.mu.Lock()
			if g.flights[key] == f {
				delete(g.flights, key)
			}
			f.res, f.err = res, err
			g.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		g.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if g.flights[key] == f {
				delete(g.flights, key)
			}
		}
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}
