package resolver

import (
	"context"
	"errors"
	"time"
)

// ErrNoSuchDatacenter is returned by a Catalog when asked about a datacenter
// it does not know. The resolver answers such names with NXDOMAIN and the
// SOA, as Consul does for its "No path to datacenter" error.
var ErrNoSuchDatacenter = errors.New("resolver: no such datacenter")

// Health states of an instance, Consul's spelling. Status is the aggregate
// of the node's and the service's checks: critical if any check is critical
// (maintenance counts as critical), else warning if any is warning, else
// passing.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// Catalog is everything the resolver needs to know about the cluster. On a
// server agent it is the local state store, on a client the cache in front
// of the forwarder. It is called once (PTR: twice) per query on the hot
// path, so implementations should avoid copying: the returned values are
// only read, never modified or retained past the query.
//
// Names (service, tag, node, dc) are passed lower-cased; implementations
// match them case-insensitively, as Consul's state store does.
// An unknown datacenter yields ErrNoSuchDatacenter; any other error makes
// the resolver answer SERVFAIL.
type Catalog interface {
	// ServiceNodes appends to dst the instances of service in dc, filtered
	// by tag when tag is not empty, and returns the extended slice. The
	// resolver reuses dst between queries. When passingOnly is true the
	// implementation may leave out instances that are not passing; it may
	// also return them: the resolver filters on Status itself (critical is
	// always dropped, warning too when passingOnly).
	ServiceNodes(ctx context.Context, dc, service, tag string, passingOnly bool, dst []Instance) ([]Instance, error)

	// Node returns the node called name in dc, or (nil, nil) if there is none.
	Node(ctx context.Context, dc, name string) (*Node, error)

	// Nodes returns all nodes of dc. Used by reverse (PTR) lookups only.
	Nodes(ctx context.Context, dc string) ([]Node, error)

	// ServicesByAddress returns the instances in dc whose service address
	// (not the node address) is addr, in its canonical textual form. Used by
	// reverse (PTR) lookups only, after no node matched.
	ServicesByAddress(ctx context.Context, dc, addr string) ([]Instance, error)
}

// QueryCatalog is implemented by catalogs that run prepared queries;
// without it <name>.query names are NXDOMAIN.
type QueryCatalog interface {
	// PreparedQuery runs the query with ID or name name in dc and appends
	// its instances to dst. An unknown query returns no instances and no
	// error.
	PreparedQuery(ctx context.Context, dc, name string, dst []Instance) ([]Instance, QueryAnswer, error)
}

// QueryAnswer is what a prepared query says about its instances.
type QueryAnswer struct {
	// TTL is the query's DNS TTL, or -1 when it sets none (the
	// service_ttl rules then apply).
	TTL time.Duration
	// Ordered: the instances are sorted by RTT (the query has Near) and
	// are answered in that order, not shuffled.
	Ordered bool
}

// Node is a catalog node as the resolver sees it.
type Node struct {
	Name    string
	Address string // IPv4, IPv6 or a host name
	// WANAddress is the node's "wan" tagged address ("" if none): used
	// instead of Address for other datacenters with TranslateWANAddrs.
	WANAddress string
	Datacenter string
	Meta       map[string]string
}

// Weights are the SRV weights of an instance by health state. The zero
// value means "not set" and is read as Consul's default {1, 1}.
type Weights struct {
	Passing int
	Warning int
}

// Instance is one service instance on one node: what a DNS answer shows
// of it. The instance's ID, tags and service meta are not kept: no answer
// shows them (a tag query is filtered by the server), and a client agent
// holds an Instance for every name it caches (144 bytes, not 192).
type Instance struct {
	Node    Node
	Service string
	Address string // empty: use the node's address
	Port    int
	Weights Weights
	Status  string // StatusPassing, StatusWarning or StatusCritical
}
