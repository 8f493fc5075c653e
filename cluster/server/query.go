package server

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/hashicorp/serf/coordinate"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// redactedToken is how the HTTP API shows a query's stored token.
const redactedToken = "<hidden>"

// registerQueryEndpoints adds the prepared query and coordinate methods.
func (s *Server) registerQueryEndpoints(g *blockGroup) {
	handle(s, structs.MethodPreparedQueryApply, func(ctx context.Context, a *structs.PreparedQueryRequest, r *string) error {
		if a.Query != nil && a.Op == structs.PreparedQueryCreate && a.Query.ID == "" {
			a.Query.ID = newUUID() // before Raft: every replica stores the same ID
		}
		if a.Query != nil && a.Op == structs.PreparedQueryUpdate && a.Query.Token == redactedToken {
			// A read-modify-write of a query shown redacted keeps its token.
			if _, old := s.State().PreparedQueryGet(a.Query.ID); old != nil {
				a.Query.Token = old.Token
			}
		}
		var wr structs.WriteResponse
		if err := s.write(ctx, structs.MethodPreparedQueryApply, a.Datacenter, structs.PreparedQueryRequestType, a, &wr); err != nil {
			return err
		}
		*r = a.Query.ID
		return nil
	})
	readEndpoint(structs.MethodPreparedQueryGet,
		func(*structs.PreparedQuerySpecificRequest) state.Key {
			return state.TablesKey(state.TablePreparedQueries)
		},
		func(st *state.Store, a *structs.PreparedQuerySpecificRequest, r *structs.IndexedPreparedQueries) (idx uint64) {
			idx, q := st.PreparedQueryGet(a.QueryID)
			r.Queries = nil
			if q != nil {
				r.Queries = []*structs.PreparedQuery{q}
			}
			return idx
		})(s, g)
	readEndpoint(structs.MethodPreparedQueryList,
		func(*structs.DCSpecificRequest) state.Key { return state.TablesKey(state.TablePreparedQueries) },
		func(st *state.Store, a *structs.DCSpecificRequest, r *structs.IndexedPreparedQueries) (idx uint64) {
			idx, r.Queries = st.PreparedQueryList()
			return idx
		})(s, g)
	handle(s, structs.MethodPreparedQueryExplain, func(ctx context.Context, a *structs.PreparedQueryExecuteRequest, r *structs.PreparedQueryExplainResponse) error {
		return s.read(ctx, structs.MethodPreparedQueryExplain, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r,
			state.TablesKey(state.TablePreparedQueries), func(st *state.Store) (uint64, error) {
				idx, q, err := st.PreparedQueryResolve(a.QueryIDOrName)
				if err != nil {
					return idx, err
				}
				if q == nil {
					return idx, structs.ErrQueryNotFound
				}
				r.Query = *q
				return idx, nil
			})
	})
	handle(s, structs.MethodPreparedQueryExecute, func(ctx context.Context, a *structs.PreparedQueryExecuteRequest, r *structs.PreparedQueryExecuteResponse) error {
		return s.read(ctx, structs.MethodPreparedQueryExecute, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r,
			state.TablesKey(state.TablePreparedQueries, state.TableNodes, state.TableServices, state.TableChecks),
			func(st *state.Store) (uint64, error) {
				idx, q, err := st.PreparedQueryResolve(a.QueryIDOrName)
				if err != nil {
					return idx, err
				}
				if q == nil {
					return idx, structs.ErrQueryNotFound
				}
				near := cmp.Or(a.Near, q.Service.Near)
				if near == "_agent" {
					near = a.Agent.Node
				}
				s.executeLocal(st, q, a.Limit, near, r)
				if len(r.Nodes) == 0 {
					s.failover(ctx, q, a.Limit, r)
				}
				return max(idx, st.CatalogIndex()), nil
			})
	})
	handle(s, structs.MethodPreparedQueryExecuteRemote, func(ctx context.Context, a *structs.PreparedQueryExecuteRemoteRequest, r *structs.PreparedQueryExecuteResponse) error {
		return s.read(ctx, structs.MethodPreparedQueryExecuteRemote, a.Datacenter, &a.QueryOptions, &r.QueryMeta, a, r,
			state.TablesKey(state.TableNodes, state.TableServices, state.TableChecks),
			func(st *state.Store) (uint64, error) {
				s.executeLocal(st, &a.Query, a.Limit, "", r)
				return st.CatalogIndex(), nil
			})
	})
	s.registerCoordinateEndpoints(g)
}

// executeLocal runs q against st: Consul's filters (health, IgnoreCheckIDs,
// Tags with "!tag", NodeMeta, ServiceMeta), shuffled, then sorted by RTT
// from node near when it has a coordinate, then cut to limit.
func (s *Server) executeLocal(st *state.Store, q *structs.PreparedQuery, limit int, near string, r *structs.PreparedQueryExecuteResponse) {
	_, rows := st.CheckServiceNodes(q.Service.Service, "", false)
	out := make([]structs.CheckServiceNode, 0, len(rows))
	for _, n := range rows {
		if queryMatches(q, &n) {
			out = append(out, n)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if near != "" {
		r.Sorted = SortByDistance(st, near, out, func(n structs.CheckServiceNode) string { return n.Node.Node })
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	r.Service = q.Service.Service
	r.Nodes = out
	r.DNS = q.DNS
	r.Datacenter = s.cfg.Datacenter
}

func queryMatches(q *structs.PreparedQuery, n *structs.CheckServiceNode) bool {
	var checks []*structs.HealthCheck
	for _, c := range n.Checks {
		if !slices.Contains(q.Service.IgnoreCheckIDs, c.CheckID) {
			checks = append(checks, c)
		}
	}
	switch structs.AggregateStatus(checks) {
	case structs.HealthCritical:
		return false
	case structs.HealthWarning:
		if q.Service.OnlyPassing {
			return false
		}
	}
	for _, t := range q.Service.Tags {
		want, neg := t, false
		if rest, ok := strings.CutPrefix(t, "!"); ok {
			want, neg = rest, true
		}
		has := slices.ContainsFunc(n.Service.Tags, func(x string) bool { return strings.EqualFold(x, want) })
		if has == neg {
			return false
		}
	}
	return metaSatisfies(n.Node.Meta, q.Service.NodeMeta) && metaSatisfies(n.Service.Meta, q.Service.ServiceMeta)
}

// metaSatisfies: every filter key is present with the filter's value
// (Consul's SatisfiesMetaFilters: a missing key fails, even for "").
func metaSatisfies(meta, filters map[string]string) bool {
	for k, v := range filters {
		if got, ok := meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// failover tries the query's failover datacenters in order (the NearestN
// nearest by WAN RTT, then the listed ones not already tried) until one
// answers with nodes. Each one tried counts in Failovers.
func (s *Server) failover(ctx context.Context, q *structs.PreparedQuery, limit int, r *structs.PreparedQueryExecuteResponse) {
	var dcs []string
	if n := q.Service.Failover.NearestN; n > 0 {
		for _, dc := range s.datacentersByRTT() {
			if dc != s.cfg.Datacenter && len(dcs) < n {
				dcs = append(dcs, dc)
			}
		}
	}
	for _, dc := range q.Service.Failover.Datacenters {
		if dc != s.cfg.Datacenter && !slices.Contains(dcs, dc) {
			dcs = append(dcs, dc)
		}
	}
	for _, dc := range dcs {
		r.Failovers++
		var rr structs.PreparedQueryExecuteResponse
		args := structs.PreparedQueryExecuteRemoteRequest{Datacenter: dc, Query: *q, Limit: limit,
			QueryOptions: structs.QueryOptions{AllowStale: true}}
		if err := s.forwardDC(ctx, structs.MethodPreparedQueryExecuteRemote, dc, &args, &rr); err != nil {
			s.log.Debug("prepared query failover failed", zap.String("datacenter", dc), zap.Error(err))
			continue
		}
		if len(rr.Nodes) > 0 {
			r.Nodes, r.Datacenter, r.Sorted = rr.Nodes, rr.Datacenter, rr.Sorted
			return
		}
	}
}

// datacentersByRTT lists the known datacenters, nearest first by the
// median WAN RTT from this server to each one's servers; datacenters
// without coordinates come last, by name.
func (s *Server) datacentersByRTT() []string {
	if s.wan == nil {
		return nil
	}
	self, err := s.wan.Serf().GetCoordinate()
	if err != nil {
		return nil
	}
	rtts := map[string][]float64{}
	for _, m := range s.wan.Members() {
		dc, _, ok := gossip.ServerAddr(m)
		if !ok || m.Status != serf.StatusAlive {
			continue
		}
		if c, ok := s.wan.Serf().GetCachedCoordinate(m.Name); ok && c != nil {
			rtts[dc] = append(rtts[dc], self.DistanceTo(c).Seconds())
		} else if _, seen := rtts[dc]; !seen {
			rtts[dc] = nil
		}
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return math.Inf(1)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	dcs := make([]string, 0, len(rtts))
	for dc := range rtts {
		dcs = append(dcs, dc)
	}
	slices.SortFunc(dcs, func(a, b string) int {
		if c := cmp.Compare(median(rtts[a]), median(rtts[b])); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return dcs
}

// SortByDistance orders rows by the RTT from node near's coordinate to
// each row's node (stable: rows of equal distance keep their order). Rows
// whose node has no coordinate go last. Nothing moves if near has none;
// it reports whether rows were sorted.
func SortByDistance[T any](st *state.Store, near string, rows []T, nodeOf func(T) string) bool {
	_, src := st.Coordinate(near)
	if src == nil || src.Coord == nil {
		return false
	}
	_, all := st.Coordinates()
	byNode := make(map[string]*coordinate.Coordinate, len(all))
	for _, c := range all {
		byNode[c.Node] = c.Coord
	}
	dist := func(name string) float64 {
		c := byNode[name]
		if c == nil || !src.Coord.IsCompatibleWith(c) {
			return math.Inf(1)
		}
		return src.Coord.DistanceTo(c).Seconds()
	}
	slices.SortStableFunc(rows, func(a, b T) int { return cmp.Compare(dist(nodeOf(a)), dist(nodeOf(b))) })
	return true
}

func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) registerCoordinateEndpoints(g *blockGroup) {
	handle(s, structs.MethodCoordinateUpdate, func(ctx context.Context, a *structs.CoordinateUpdateRequest, r *structs.WriteResponse) error {
		if err := structs.ValidateWrite(a); err != nil {
			return err
		}
		batch := structs.CoordinateBatchUpdateRequest{Updates: []structs.Coordinate{{Node: a.Node, Segment: a.Segment, Coord: a.Coord}}}
		if a.Datacenter != "" && a.Datacenter != s.cfg.Datacenter {
			return s.forwardDC(ctx, structs.MethodCoordinateUpdate, a.Datacenter, a, r)
		}
		if done, err := s.forward(ctx, structs.MethodCoordinateUpdate, "", nil, a, r); done {
			return err
		}
		// Ignorable: coordinates are soft state (they only order answers),
		// so a server of an older build skips them instead of stopping.
		_, idx, err := s.apply(structs.CoordinateBatchUpdateType|structs.IgnoreUnknownTypeFlag, &batch)
		if err != nil {
			return err
		}
		r.Index, r.Success = idx, true
		return nil
	})
	readEndpoint(structs.MethodCoordinateListNodes,
		func(*structs.DCSpecificRequest) state.Key { return state.TablesKey(state.TableCoordinates) },
		func(st *state.Store, a *structs.DCSpecificRequest, r *structs.IndexedCoordinates) (idx uint64) {
			idx, r.Coordinates = st.Coordinates()
			return idx
		})(s, g)
	readEndpoint(structs.MethodCoordinateNode,
		func(*structs.NodeSpecificRequest) state.Key { return state.TablesKey(state.TableCoordinates) },
		func(st *state.Store, a *structs.NodeSpecificRequest, r *structs.IndexedCoordinates) (idx uint64) {
			idx, c := st.Coordinate(a.Node)
			r.Coordinates = nil
			if c != nil {
				r.Coordinates = []*structs.Coordinate{c}
			}
			return idx
		})(s, g)
	handle(s, structs.MethodCoordinateListDatacenters, func(ctx context.Context, a *structs.DCSpecificRequest, r *[]structs.DatacenterMap) error {
		*r = s.wanCoordinates()
		return nil
	})
}

// wanCoordinates groups the WAN pool's server coordinates by datacenter.
func (s *Server) wanCoordinates() []structs.DatacenterMap {
	byDC := map[string]*structs.DatacenterMap{}
	var order []string
	add := func(dc string) *structs.DatacenterMap {
		if m := byDC[dc]; m != nil {
			return m
		}
		byDC[dc] = &structs.DatacenterMap{Datacenter: dc, AreaID: "wan", Coordinates: []*structs.Coordinate{}}
		order = append(order, dc)
		return byDC[dc]
	}
	add(s.cfg.Datacenter)
	if s.wan != nil {
		for _, m := range s.wan.Members() {
			dc, _, ok := gossip.ServerAddr(m)
			if !ok {
				continue
			}
			dm := add(dc)
			var c *coordinate.Coordinate
			if m.Name == s.wan.LocalMember().Name {
				c, _ = s.wan.Serf().GetCoordinate()
			} else {
				c, _ = s.wan.Serf().GetCachedCoordinate(m.Name)
			}
			if c != nil {
				dm.Coordinates = append(dm.Coordinates, &structs.Coordinate{Node: m.Name, Coord: c})
			}
		}
	}
	slices.Sort(order[1:])
	out := make([]structs.DatacenterMap, 0, len(order))
	for _, dc := range order {
		out = append(out, *byDC[dc])
	}
	return out
}
