package state

import (
	"errors"
	"sync"

	"github.com/cairnd/cairn/cluster/structs"
)

// Table names one indexed table of the Store; blocking queries watch tables.
type Table uint8

// The Store's tables.
const (
	TableNodes Table = iota
	TableServices
	TableChecks
	TableKVS
	numTables
)

// String returns the table's name as Consul spells it.
func (t Table) String() string {
	switch t {
	case TableNodes:
		return "nodes"
	case TableServices:
		return "services"
	case TableChecks:
		return "checks"
	case TableKVS:
		return "kvs"
	}
	return "unknown"
}

// Errors returned by the Store.
var (
	// ErrMissingKey rejects a KV write without a key.
	ErrMissingKey = errors.New("missing key name")
	// ErrMissingCheckID rejects a check with neither CheckID nor Name.
	ErrMissingCheckID = errors.New("missing check ID")
	// ErrUnknownService rejects a check naming a service not on its node.
	ErrUnknownService = errors.New("unknown service")
)

// nodeRecord is a node with everything registered on it. The record itself
// lives as long as the node; node is replaced on every change.
type nodeRecord struct {
	node     *structs.Node
	services map[string]*svcRecord           // by service ID
	checks   map[string]*structs.HealthCheck // by check ID
}

// svcRecord is one service instance with its derived, immutable views,
// rebuilt whenever the service, its node or the node's checks change.
type svcRecord struct {
	nr  *nodeRecord
	svc *structs.NodeService
	// sn is the flat catalog row of this instance.
	sn *structs.ServiceNode
	// checks are the node-level checks plus this service's checks, by
	// CheckID, as /v1/health/service shows them. Shared with readers.
	checks []*structs.HealthCheck
	// status is the aggregate status of checks, for ?passing reads.
	status string
	// checksDirty marks checks for rebuilding at the end of a write.
	checksDirty bool
}

// Store is the indexed catalog and KV state. All methods are safe for
// concurrent use; writes are expected from a single goroutine (the FSM) but
// need not be.
type Store struct {
	mu sync.RWMutex

	nodes     map[string]*nodeRecord
	nodeNames sortedKeys
	// byService lists the instances of each service name, sorted by node
	// then service ID, which is the order every service read returns.
	byService map[string][]*svcRecord
	kvs       map[string]*structs.DirEntry
	kvKeys    sortedKeys

	tableIndex [numTables]uint64
	// Per-key indexes (see doc.go): the last change to each service (by
	// name) and node; a name absent from the catalog reports the index of
	// the last removal of any service (node) instead. kvDeleted holds, per
	// directory ("a/b/") that still has keys, and for "", the index of the
	// last delete below it. floor is the restored snapshot's index, which
	// every per-key read reports at least.
	svcIndex   map[string]uint64
	svcGone    uint64
	nodeIndex  map[string]uint64
	nodeGone   uint64
	kvDeleted  map[string]uint64
	floor      uint64
	pending    changes
	hook       CommitHook
	watchMu    sync.Mutex
	watches    [numMasks]chan struct{}
	keyWatches [numKinds]map[string]chan struct{}

	abandonOnce sync.Once
	abandonCh   chan struct{}
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		nodes:     make(map[string]*nodeRecord),
		byService: make(map[string][]*svcRecord),
		kvs:       make(map[string]*structs.DirEntry),
		svcIndex:  make(map[string]uint64),
		nodeIndex: make(map[string]uint64),
		kvDeleted: make(map[string]uint64),
		abandonCh: make(chan struct{}),
	}
}

// Index returns the highest index of any table (0 when nothing was written).
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var m uint64
	for _, v := range s.tableIndex {
		m = max(m, v)
	}
	return m
}

// CatalogIndex returns the index of the last change to any catalog table
// (nodes, services, checks), at least 1: what every catalog read reported
// before indexes were per key. Only the client cache's old index-watch
// mode still blocks on it (see cluster/server); clients subscribe per key.
func (s *Store) CatalogIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(s.maxIndex(TableNodes, TableServices, TableChecks), s.floor)
}

// TableIndex returns the index of the last change to table t (0 if none).
func (s *Store) TableIndex(t Table) uint64 {
	if t >= numTables {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tableIndex[t]
}

// maxIndex returns the highest index of tables, at least 1. Callers hold mu.
func (s *Store) maxIndex(tables ...Table) uint64 {
	m := uint64(1)
	for _, t := range tables {
		m = max(m, s.tableIndex[t])
	}
	return m
}

// Abandon marks the Store as replaced: AbandonCh closes and blocked queries
// return at once. Calling it more than once is harmless.
func (s *Store) Abandon() {
	s.abandonOnce.Do(func() { close(s.abandonCh) })
}

// AbandonCh is closed when the Store is abandoned.
func (s *Store) AbandonCh() <-chan struct{} {
	return s.abandonCh
}
