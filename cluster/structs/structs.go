package structs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Health check states, Consul's spelling.
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
	HealthMaint    = "maintenance"
	HealthAny      = "any"
)

// SerfCheckID is the node-level check the leader keeps in step with gossip
// membership, as Consul's "serfHealth".
const (
	SerfCheckID   = "serfHealth"
	SerfCheckName = "Serf Health Status"
	// ConsulServiceID is the service every server registers for itself.
	ConsulServiceID   = "consul"
	ConsulServiceName = "consul"
)

// Sentinel errors callers branch on. Across RPC they travel as their text
// (alone, or followed by ": " and details) and are mapped back with
// ErrorFromString.
var (
	// ErrWriteOutcomeUnknown: the write may or may not have been applied.
	// It left this node (reached Raft, or was sent to another server) and
	// then the answer was lost: leadership lost while committing, the
	// leader stopped answering, the connection broke. It was not resent,
	// since resending could apply it twice; the caller reads before trying
	// again. Every layer (server, forwarder, HTTP, CLI) passes it on as is.
	ErrWriteOutcomeUnknown = errors.New("write outcome unknown: the write may or may not have been applied")
	ErrNotLeader           = errors.New("not leader")
	ErrNoLeader            = errors.New("no cluster leader")
	ErrNoPathToDC          = errors.New("no path to datacenter")
	ErrCASConflict         = errors.New("cas conflict")
	ErrUnknownNode         = errors.New("unknown node")
	ErrNoServers           = errors.New("no known servers")
	ErrMissingNode         = errors.New("missing node name")
	ErrMissingAddress      = errors.New("missing node address")
	ErrUnknownMessageTyp   = errors.New("unknown message type")
)

// ErrorFromString maps an error text received over RPC back to the
// sentinel it carries: the sentinel itself when msg is exactly its text,
// an error wrapping it (errors.Is holds) with msg's text when msg is the
// sentinel's text followed by ": " and details; nil otherwise.
func ErrorFromString(msg string) error {
	for _, e := range []error{ErrWriteOutcomeUnknown, ErrNotLeader, ErrNoLeader, ErrNoPathToDC, ErrCASConflict, ErrUnknownNode, ErrNoServers, ErrMissingNode, ErrMissingAddress, ErrInvalidRequest, ErrPermissionDenied, ErrACLNotFound, ErrACLBootstrapDone, ErrACLDisabled, ErrQueryNotFound, ErrRateLimited} {
		text := e.Error()
		if msg == text {
			return e
		}
		if rest, ok := strings.CutPrefix(msg, text+": "); ok {
			return fmt.Errorf("%w: %s", e, rest)
		}
		if rest, ok := strings.CutPrefix(msg, text+" ("); ok {
			// "%w (detail)", e.g. ACL bootstrap's reset index.
			return fmt.Errorf("%w (%s", e, rest)
		}
	}
	return nil
}

// MessageType prefixes every Raft log entry. The values are part of the
// on-disk format and never change meaning.
type MessageType uint8

const (
	RegisterRequestType   MessageType = 0
	DeregisterRequestType MessageType = 1
	KVSRequestType        MessageType = 2
)

// IgnoreUnknownTypeFlag, set in a MessageType, marks an entry that a server
// which does not know its type may skip (Consul's flag, same value): only
// for commands whose absence cannot make replicas answer differently. A
// server that meets an unknown type without the flag stops instead of
// diverging from the servers that apply it (see cluster/fsm).
const IgnoreUnknownTypeFlag MessageType = 128

// Node is a catalog node.
type Node struct {
	ID              string            `json:"ID"`
	Node            string            `json:"Node"`
	Address         string            `json:"Address"`
	Datacenter      string            `json:"Datacenter"`
	TaggedAddresses map[string]string `json:"TaggedAddresses"`
	Meta            map[string]string `json:"Meta"`
	CreateIndex     uint64            `json:"CreateIndex"`
	ModifyIndex     uint64            `json:"ModifyIndex"`
}

// Weights are the SRV weights of a service instance by health.
type Weights struct {
	Passing int `json:"Passing"`
	Warning int `json:"Warning"`
}

// NodeService is one service instance on a node.
type NodeService struct {
	ID                string            `json:"ID"`
	Service           string            `json:"Service"`
	Tags              []string          `json:"Tags"`
	Address           string            `json:"Address"`
	Port              int               `json:"Port"`
	Meta              map[string]string `json:"Meta"`
	Weights           *Weights          `json:"Weights"`
	EnableTagOverride bool              `json:"EnableTagOverride"`
	CreateIndex       uint64            `json:"CreateIndex"`
	ModifyIndex       uint64            `json:"ModifyIndex"`
}

// HealthCheck is a node-level (ServiceID == "") or service-level check.
type HealthCheck struct {
	Node        string   `json:"Node"`
	CheckID     string   `json:"CheckID"`
	Name        string   `json:"Name"`
	Status      string   `json:"Status"`
	Notes       string   `json:"Notes"`
	Output      string   `json:"Output"`
	ServiceID   string   `json:"ServiceID"`
	ServiceName string   `json:"ServiceName"`
	ServiceTags []string `json:"ServiceTags"`
	Type        string   `json:"Type"`
	CreateIndex uint64   `json:"CreateIndex"`
	ModifyIndex uint64   `json:"ModifyIndex"`
}

// ServiceNode is the flat row /v1/catalog/service/<s> returns.
type ServiceNode struct {
	ID                       string            `json:"ID"`
	Node                     string            `json:"Node"`
	Address                  string            `json:"Address"`
	Datacenter               string            `json:"Datacenter"`
	TaggedAddresses          map[string]string `json:"TaggedAddresses"`
	NodeMeta                 map[string]string `json:"NodeMeta"`
	ServiceID                string            `json:"ServiceID"`
	ServiceName              string            `json:"ServiceName"`
	ServiceTags              []string          `json:"ServiceTags"`
	ServiceAddress           string            `json:"ServiceAddress"`
	ServicePort              int               `json:"ServicePort"`
	ServiceMeta              map[string]string `json:"ServiceMeta"`
	ServiceWeights           Weights           `json:"ServiceWeights"`
	ServiceEnableTagOverride bool              `json:"ServiceEnableTagOverride"`
	CreateIndex              uint64            `json:"CreateIndex"`
	ModifyIndex              uint64            `json:"ModifyIndex"`
}

// CheckServiceNode is a service instance with its node and every check that
// applies to it (node-level checks included), as /v1/health/service returns.
type CheckServiceNode struct {
	Node    *Node          `json:"Node"`
	Service *NodeService   `json:"Service"`
	Checks  []*HealthCheck `json:"Checks"`
}

// AggregatedStatus is the worst status among the checks (passing if none).
func (c *CheckServiceNode) AggregatedStatus() string {
	return AggregateStatus(c.Checks)
}

// AggregateStatus returns the worst status of checks: critical (or
// maintenance) > warning > passing.
func AggregateStatus(checks []*HealthCheck) string {
	st := HealthPassing
	for _, c := range checks {
		switch c.Status {
		case HealthCritical, HealthMaint:
			return HealthCritical
		case HealthWarning:
			st = HealthWarning
		}
	}
	return st
}

// NodeServices is a node with its services, as /v1/catalog/node/<n>.
type NodeServices struct {
	Node     *Node                   `json:"Node"`
	Services map[string]*NodeService `json:"Services"`
}

// DirEntry is one KV entry.
type DirEntry struct {
	Key         string `json:"Key"`
	Value       []byte `json:"Value"`
	Flags       uint64 `json:"Flags"`
	LockIndex   uint64 `json:"LockIndex"`
	Session     string `json:"Session,omitempty"`
	CreateIndex uint64 `json:"CreateIndex"`
	ModifyIndex uint64 `json:"ModifyIndex"`
}

// KVOp is a KV write verb.
type KVOp string

const (
	KVSet        KVOp = "set"
	KVDelete     KVOp = "delete"
	KVDeleteCAS  KVOp = "delete-cas"
	KVDeleteTree KVOp = "delete-tree"
	KVCAS        KVOp = "cas"
)

// QueryOptions are Consul's read options.
type QueryOptions struct {
	// MinQueryIndex > 0 makes the read blocking: it returns once the
	// watched data's index exceeds it or MaxQueryTime passes.
	MinQueryIndex uint64
	MaxQueryTime  time.Duration
	// AllowStale lets any server answer from its local state.
	AllowStale bool
	// RequireConsistent makes the leader confirm leadership first.
	RequireConsistent bool
	// MaxStaleDuration bounds how stale a stale read may be (0 = any).
	MaxStaleDuration time.Duration
}

// QueryMeta is returned with every read.
type QueryMeta struct {
	Index       uint64
	LastContact time.Duration
	KnownLeader bool
	// ResultsFilteredByACLs: the token could not read some of the
	// results and they were left out (X-Consul-Results-Filtered-By-ACLs).
	ResultsFilteredByACLs bool
}

// RegisterRequest registers a node, optionally a service and checks, in
// one Raft command (Consul's catalog register).
type RegisterRequest struct {
	Datacenter      string
	ID              string
	Node            string
	Address         string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string
	Service         *NodeService
	Check           *HealthCheck
	Checks          []*HealthCheck
	// SkipNodeUpdate keeps an existing node's address/meta untouched.
	SkipNodeUpdate bool
}

// DeregisterRequest removes a node (ServiceID and CheckID empty), a
// service with its checks, or a single check.
type DeregisterRequest struct {
	Datacenter string
	Node       string
	ServiceID  string
	CheckID    string
}

// KVSRequest is a KV write.
type KVSRequest struct {
	Datacenter string
	Op         KVOp
	DirEnt     DirEntry
}

// Requests for reads. Each embeds QueryOptions.

// DCSpecificRequest lists nodes or services.
type DCSpecificRequest struct {
	Datacenter      string
	NodeMetaFilters map[string]string
	QueryOptions
}

// ServiceSpecificRequest reads one service's instances.
type ServiceSpecificRequest struct {
	Datacenter  string
	ServiceName string
	ServiceTag  string
	TagFilter   bool
	PassingOnly bool
	QueryOptions
}

// NodeSpecificRequest reads one node.
type NodeSpecificRequest struct {
	Datacenter string
	Node       string
	QueryOptions
}

// ChecksInStateRequest reads checks in a state ("any" for all).
type ChecksInStateRequest struct {
	Datacenter string
	State      string
	QueryOptions
}

// KeyRequest reads one key, a prefix or the keys under a prefix.
type KeyRequest struct {
	Datacenter string
	Key        string
	Separator  string
	QueryOptions
}

// Responses.

type IndexedNodes struct {
	Nodes []*Node
	QueryMeta
}

type IndexedServices struct {
	Services map[string][]string
	QueryMeta
}

type IndexedServiceNodes struct {
	ServiceNodes []*ServiceNode
	QueryMeta
}

type IndexedCheckServiceNodes struct {
	Nodes []CheckServiceNode
	QueryMeta
}

type IndexedNodeServices struct {
	NodeServices *NodeServices
	QueryMeta
}

type IndexedHealthChecks struct {
	HealthChecks []*HealthCheck
	QueryMeta
}

type IndexedDirEntries struct {
	Entries []*DirEntry
	QueryMeta
}

type IndexedKeyList struct {
	Keys []string
	QueryMeta
}

// WriteResponse acknowledges a committed write. For CAS ops Success says
// whether the compare held.
type WriteResponse struct {
	Index   uint64
	Success bool
}

// UserEvent is a serf user event as Consul's /v1/event API shows it.
type UserEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// EventFireRequest fires a user event in a datacenter.
type EventFireRequest struct {
	Datacenter string
	Event      UserEvent
}
