package http

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// Backend is what the HTTP API needs from the agent. RPC reaches the
// server tier (a local state store on servers, the forwarder on clients);
// the other methods are agent-local.
//
// Errors: an error matching ErrNotFound (404), ErrBadRequest (400) or
// config.ErrScriptChecksDisabled (403) under errors.Is gets that status;
// any other error is a 500 with the error's text. These are the classes of
// the contract, not domain errors: the agent keeps its own sentinels and
// translates them in one place (agent/errors.go), and errorStatus in
// server.go is the one place classes become status codes.
type Backend interface {
	// RPC calls method (a structs.Method* name) with args and decodes the
	// answer into reply. It honours ctx cancellation (the client went away).
	RPC(ctx context.Context, method string, args, reply any) error
	// Datacenter is the agent's datacenter, used when ?dc is absent.
	Datacenter() string
	// NodeName is the agent's node name.
	NodeName() string
	// Self is the /v1/agent/self body, Consul's shape: at least
	// "Config" (with "Datacenter", "NodeName", "Server", "Version"; the
	// official client's Agent().NodeName() reads Config.NodeName) and
	// "Member" (a Member).
	Self() map[string]any
	// Members lists the serf LAN (or WAN) members.
	Members(wan bool) []Member
	// Join joins the given addresses and returns how many were joined.
	Join(ctx context.Context, addrs []string, wan bool) (int, error)
	// Leave leaves the cluster gracefully.
	Leave(ctx context.Context) error
	// ForceLeave marks node as left (prune: forget it entirely).
	ForceLeave(ctx context.Context, node string, prune bool) error
	// Reload re-reads the configuration files.
	Reload(ctx context.Context) error
	// LocalServices and LocalChecks are the agent's own registrations by
	// ID. The returned maps and values must not be retained by the agent
	// for mutation: the API only reads and encodes them.
	LocalServices() map[string]*structs.NodeService
	LocalChecks() map[string]*structs.HealthCheck
	// AddService registers (or replaces) a local service and its checks.
	// def is validated and has its defaults set (config's SetDefaults):
	// IDs, check names and weights are filled in. Whether script checks
	// are allowed is the Backend's call: wrap
	// config.ErrScriptChecksDisabled to answer 403.
	AddService(ctx context.Context, def *config.ServiceDefinition) error
	// RemoveService deregisters a local service and its checks;
	// ErrNotFound if unknown.
	RemoveService(ctx context.Context, id string) error
	// AddCheck registers (or replaces) a local check; def is validated,
	// has a name and its defaults set. ErrBadRequest if its ServiceID is
	// not a local service.
	AddCheck(ctx context.Context, def *config.CheckDefinition) error
	// RemoveCheck deregisters a local check; ErrNotFound if unknown.
	RemoveCheck(ctx context.Context, id string) error
	// UpdateTTL sets a TTL check's status (structs.HealthPassing, ...)
	// and output; ErrNotFound if unknown, ErrBadRequest if not a TTL check.
	UpdateTTL(ctx context.Context, checkID, status, output string) error
	// ServiceMaintenance toggles maintenance mode of a local service;
	// ErrNotFound if unknown.
	ServiceMaintenance(ctx context.Context, serviceID string, enable bool, reason string) error
	// NodeMaintenance toggles maintenance mode of the node.
	NodeMaintenance(ctx context.Context, enable bool, reason string) error
	// UserEvents are the recent user events this agent saw, oldest first.
	UserEvents() []structs.UserEvent
	// Monitor streams log lines at level or above until ctx is done, then
	// closes the channel.
	Monitor(ctx context.Context, level string) (<-chan []byte, error)
	// Metrics is the registry behind /v1/agent/metrics.
	Metrics() prometheus.Gatherer
}

// Member is one serf member, Consul's AgentMember JSON.
type Member struct {
	Name        string            `json:"Name"`
	Addr        string            `json:"Addr"`
	Port        uint16            `json:"Port"`
	Tags        map[string]string `json:"Tags"`
	Status      int               `json:"Status"`
	ProtocolMin uint8             `json:"ProtocolMin"`
	ProtocolMax uint8             `json:"ProtocolMax"`
	ProtocolCur uint8             `json:"ProtocolCur"`
	DelegateMin uint8             `json:"DelegateMin"`
	DelegateMax uint8             `json:"DelegateMax"`
	DelegateCur uint8             `json:"DelegateCur"`
}

// Serf member status values, as Consul reports them in Member.Status.
const (
	MemberStatusNone    = 0
	MemberStatusAlive   = 1
	MemberStatusLeaving = 2
	MemberStatusLeft    = 3
	MemberStatusFailed  = 4
)

// The error classes of the Backend contract (see Backend).
var (
	ErrNotFound   = errors.New("not found")
	ErrBadRequest = errors.New("bad request")
)
