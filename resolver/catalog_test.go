package resolver

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtureCatalog is the in-memory Catalog the tests use, loaded from
// testdata/catalog.json: per datacenter, nodes and service instances.
type fixtureCatalog struct {
	dcs map[string]*fixtureDC
}

type fixtureDC struct {
	nodes   []Node
	insts   []Instance
	tags    [][]string // insts[i]'s tags (filtered here, as a server does)
	queries map[string]fixtureQuery
}

// fixtureQuery is a prepared query of the fixture: a service, an
// optional DNS TTL and one failover datacenter used when it has none.
type fixtureQuery struct {
	Service, TTL, Failover string
}

type fixtureFile map[string]struct {
	Nodes    []Node
	Services []struct {
		Node, ID, Service, Address, Status string
		Port                               int
		Tags                               []string
		Weights                            Weights
	}
	Queries map[string]fixtureQuery
}

func loadFixture(t testing.TB) *fixtureCatalog {
	t.Helper()
	raw, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("catalog.json: %v", err)
	}
	c := &fixtureCatalog{dcs: map[string]*fixtureDC{}}
	for dc, d := range f {
		fd := &fixtureDC{queries: d.Queries}
		for _, n := range d.Nodes {
			n.Datacenter = dc
			fd.nodes = append(fd.nodes, n)
		}
		for _, s := range d.Services {
			i := slices.IndexFunc(fd.nodes, func(n Node) bool { return n.Name == s.Node })
			if i < 0 {
				t.Fatalf("catalog.json: service %s on unknown node %s", s.ID, s.Node)
			}
			fd.insts = append(fd.insts, Instance{
				Node: fd.nodes[i], Service: s.Service, Address: s.Address,
				Port: s.Port, Weights: s.Weights, Status: s.Status,
			})
			fd.tags = append(fd.tags, s.Tags)
		}
		c.dcs[dc] = fd
	}
	return c
}

func (c *fixtureCatalog) dc(name string) (*fixtureDC, error) {
	d, ok := c.dcs[name]
	if !ok {
		return nil, ErrNoSuchDatacenter
	}
	return d, nil
}

func (c *fixtureCatalog) ServiceNodes(_ context.Context, dc, service, tag string, _ bool, dst []Instance) ([]Instance, error) {
	d, err := c.dc(dc)
	if err != nil {
		return dst, err
	}
	for i, in := range d.insts {
		if !strings.EqualFold(in.Service, service) {
			continue
		}
		if tag != "" && !slices.ContainsFunc(d.tags[i], func(t string) bool { return strings.EqualFold(t, tag) }) {
			continue
		}
		dst = append(dst, in)
	}
	return dst, nil
}

func (c *fixtureCatalog) Node(_ context.Context, dc, name string) (*Node, error) {
	d, err := c.dc(dc)
	if err != nil {
		return nil, err
	}
	for i := range d.nodes {
		if strings.EqualFold(d.nodes[i].Name, name) {
			n := d.nodes[i]
			return &n, nil
		}
	}
	return nil, nil
}

func (c *fixtureCatalog) Nodes(_ context.Context, dc string) ([]Node, error) {
	d, err := c.dc(dc)
	if err != nil {
		return nil, err
	}
	return d.nodes, nil
}

func (c *fixtureCatalog) ServicesByAddress(_ context.Context, dc, addr string) ([]Instance, error) {
	d, err := c.dc(dc)
	if err != nil {
		return nil, err
	}
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, nil
	}
	var out []Instance
	for _, in := range d.insts {
		if a, err := netip.ParseAddr(in.Address); err == nil && a == want {
			out = append(out, in)
		}
	}
	return out, nil
}

// PreparedQuery implements QueryCatalog: the query's service in dc, or in
// its failover datacenter when dc has no instance.
func (c *fixtureCatalog) PreparedQuery(ctx context.Context, dc, name string, dst []Instance) ([]Instance, QueryAnswer, error) {
	qa := QueryAnswer{TTL: -1}
	d, err := c.dc(dc)
	if err != nil {
		return dst, qa, err
	}
	q, ok := d.queries[name]
	if !ok {
		return dst, qa, nil
	}
	if q.TTL != "" {
		qa.TTL, _ = time.ParseDuration(q.TTL)
	}
	n := len(dst)
	dst, err = c.ServiceNodes(ctx, dc, q.Service, "", false, dst)
	if err == nil && len(dst) == n && q.Failover != "" {
		dst, err = c.ServiceNodes(ctx, q.Failover, q.Service, "", false, dst)
	}
	return dst, qa, err
}
