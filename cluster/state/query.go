package state

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

const (
	maskPreparedQueries tableMask = 1 << TablePreparedQueries
	maskCoordinates     tableMask = 1 << TableCoordinates
)

// Prepared query write errors (every replica rejects the same entry).
// They wrap structs.ErrInvalidRequest: the caller's input is at fault.
var (
	ErrQueryNameTaken  = fmt.Errorf("%w: Name: a prepared query with that name already exists", structs.ErrInvalidRequest)
	ErrQueryIDMissing  = fmt.Errorf("%w: ID: missing prepared query ID", structs.ErrInvalidRequest)
	ErrQueryNameIsUUID = fmt.Errorf("%w: Name: a prepared query name cannot look like a query ID", structs.ErrInvalidRequest)
)

// PreparedQuerySet creates or (update) replaces the query q.ID at idx.
// Names are unique; an update keeps CreateIndex.
func (s *Store) PreparedQuerySet(idx uint64, q *structs.PreparedQuery, update bool) error {
	if q == nil || q.ID == "" {
		return ErrQueryIDMissing
	}
	if isQueryID(q.Name) {
		return ErrQueryNameIsUUID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.queries[q.ID]
	if update && old == nil {
		return structs.ErrQueryNotFound
	}
	if !update && old != nil {
		return fmt.Errorf("prepared query ID %s already exists", q.ID)
	}
	if q.Name != "" {
		if id, ok := s.queryNames[q.Name]; ok && id != q.ID {
			return ErrQueryNameTaken
		}
	}
	nq := *q
	nq.CreateIndex, nq.ModifyIndex = idx, idx
	if old != nil {
		nq.CreateIndex = old.CreateIndex
		if old.Name != "" {
			delete(s.queryNames, old.Name)
		}
	}
	s.queries[q.ID] = &nq
	if nq.Name != "" {
		s.queryNames[nq.Name] = nq.ID
	}
	s.commit(maskPreparedQueries, idx)
	return nil
}

// PreparedQueryDelete removes query id; an unknown ID is ErrQueryNotFound.
func (s *Store) PreparedQueryDelete(idx uint64, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.queries[id]
	if old == nil {
		return structs.ErrQueryNotFound
	}
	delete(s.queries, id)
	if old.Name != "" {
		delete(s.queryNames, old.Name)
	}
	s.commit(maskPreparedQueries, idx)
	return nil
}

// PreparedQueryGet returns query id (nil if none) and the table index.
func (s *Store) PreparedQueryGet(id string) (uint64, *structs.PreparedQuery) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxIndex(TablePreparedQueries), s.queries[id]
}

// PreparedQueryList returns every query, by ID.
func (s *Store) PreparedQueryList() (uint64, []*structs.PreparedQuery) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.PreparedQuery, 0, len(s.queries))
	for _, id := range slices.Sorted(maps.Keys(s.queries)) {
		out = append(out, s.queries[id])
	}
	return s.maxIndex(TablePreparedQueries), out
}

// PreparedQueryResolve finds the query an execute names: by ID, then by
// exact name, then the template with the longest name prefixing it (a
// template named "" matches every name). Templates come back rendered
// for name; the result is a copy the caller may keep. nil if none.
func (s *Store) PreparedQueryResolve(idOrName string) (uint64, *structs.PreparedQuery, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.maxIndex(TablePreparedQueries)
	q := s.queries[idOrName]
	if q == nil {
		if id, ok := s.queryNames[idOrName]; ok {
			q = s.queries[id]
		}
	}
	if q != nil && q.Template.Type == "" {
		c := copyQuery(q)
		return idx, c, nil
	}
	if q == nil {
		best := -1
		for _, t := range s.queries {
			if t.Template.Type == "" || !strings.HasPrefix(idOrName, t.Name) || len(t.Name) <= best {
				continue
			}
			q, best = t, len(t.Name)
		}
	}
	if q == nil {
		return idx, nil, nil
	}
	r, err := RenderQueryTemplate(q, idOrName)
	return idx, r, err
}

func copyQuery(q *structs.PreparedQuery) *structs.PreparedQuery {
	c := *q
	c.Service.Tags = slices.Clone(q.Service.Tags)
	c.Service.IgnoreCheckIDs = slices.Clone(q.Service.IgnoreCheckIDs)
	c.Service.Failover.Datacenters = slices.Clone(q.Service.Failover.Datacenters)
	c.Service.NodeMeta = maps.Clone(q.Service.NodeMeta)
	c.Service.ServiceMeta = maps.Clone(q.Service.ServiceMeta)
	return &c
}

// templateVar matches ${name.full}, ${name.prefix}, ${name.suffix} and
// ${match(N)}, Consul's template variables.
var templateVar = regexp.MustCompile(`\$\{\s*(name\.full|name\.prefix|name\.suffix|match\(\s*(\d+)\s*\))\s*\}`)

// RenderQueryTemplate renders template t for the executed name: every
// string of the Service block has its variables replaced; with
// RemoveEmptyTags, tags that render empty are dropped.
func RenderQueryTemplate(t *structs.PreparedQuery, name string) (*structs.PreparedQuery, error) {
	var matches []string
	if t.Template.Regexp != "" {
		re, err := regexp.Compile(t.Template.Regexp)
		if err != nil {
			return nil, fmt.Errorf("%w: Template.Regexp: %v", structs.ErrInvalidRequest, err)
		}
		matches = re.FindStringSubmatch(name)
	}
	render := func(s string) string {
		return templateVar.ReplaceAllStringFunc(s, func(v string) string {
			m := templateVar.FindStringSubmatch(v)
			switch m[1] {
			case "name.full":
				return name
			case "name.prefix":
				return t.Name
			case "name.suffix":
				return strings.TrimPrefix(name, t.Name)
			}
			i, _ := strconv.Atoi(m[2])
			if i < len(matches) {
				return matches[i]
			}
			return ""
		})
	}
	q := copyQuery(t)
	q.Service.Service = render(q.Service.Service)
	q.Service.Near = render(q.Service.Near)
	tags := q.Service.Tags[:0]
	for _, tag := range q.Service.Tags {
		tag = render(tag)
		if tag == "" && t.Template.RemoveEmptyTags {
			continue
		}
		tags = append(tags, tag)
	}
	q.Service.Tags = tags
	for k, v := range q.Service.NodeMeta {
		q.Service.NodeMeta[k] = render(v)
	}
	for k, v := range q.Service.ServiceMeta {
		q.Service.ServiceMeta[k] = render(v)
	}
	for i, dc := range q.Service.Failover.Datacenters {
		q.Service.Failover.Datacenters[i] = render(dc)
	}
	return q, nil
}

// isQueryID reports whether s has the shape of a UUID (query IDs are).
func isQueryID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// CoordinateBatchUpdate stores coordinates at idx; updates for nodes not
// in the catalog are ignored, as Consul does.
func (s *Store) CoordinateBatchUpdate(idx uint64, updates []structs.Coordinate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for i := range updates {
		u := updates[i]
		if u.Coord == nil || s.nodes[u.Node] == nil {
			continue
		}
		s.coords[u.Node] = &u
		changed = true
	}
	if changed {
		s.commit(maskCoordinates, idx)
	}
	return nil
}

// Coordinates returns every stored coordinate, by node name.
func (s *Store) Coordinates() (uint64, []*structs.Coordinate) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*structs.Coordinate, 0, len(s.coords))
	for name, c := range s.coords {
		if s.nodes[name] != nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return s.maxIndex(TableCoordinates), out
}

// Coordinate returns the coordinate of node (nil if none).
func (s *Store) Coordinate(node string) (uint64, *structs.Coordinate) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.coords[node]
	if s.nodes[node] == nil {
		c = nil
	}
	return s.maxIndex(TableCoordinates), c
}
