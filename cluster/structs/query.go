package structs

import (
	"errors"
	"fmt"
	"time"
)

// MessageType of prepared query writes (msgpack-encoded
// PreparedQueryRequest).
const PreparedQueryRequestType MessageType = 11

// Prepared query RPC methods. Request → response types:
const (
	MethodPreparedQueryApply         = "PreparedQuery.Apply"         // PreparedQueryRequest → string (the query ID)
	MethodPreparedQueryGet           = "PreparedQuery.Get"           // PreparedQuerySpecificRequest → IndexedPreparedQueries
	MethodPreparedQueryList          = "PreparedQuery.List"          // DCSpecificRequest → IndexedPreparedQueries
	MethodPreparedQueryExecute       = "PreparedQuery.Execute"       // PreparedQueryExecuteRequest → PreparedQueryExecuteResponse
	MethodPreparedQueryExplain       = "PreparedQuery.Explain"       // PreparedQueryExecuteRequest → PreparedQueryExplainResponse
	MethodPreparedQueryExecuteRemote = "PreparedQuery.ExecuteRemote" // PreparedQueryExecuteRemoteRequest → PreparedQueryExecuteResponse
)

// PreparedQueryOp is a prepared query write verb.
type PreparedQueryOp string

const (
	PreparedQueryCreate PreparedQueryOp = "create"
	PreparedQueryUpdate PreparedQueryOp = "update"
	PreparedQueryDelete PreparedQueryOp = "delete"
)

// QueryTemplateNamePrefixMatch is the one template type Consul defines.
const QueryTemplateNamePrefixMatch = "name_prefix_match"

// ErrQueryNotFound: no query has that ID or name (HTTP 404).
var ErrQueryNotFound = errors.New("Query not found")

// QueryFailover is Consul's QueryFailoverOptions.
type QueryFailover struct {
	NearestN    int      `json:"NearestN"`
	Datacenters []string `json:"Datacenters"`
}

// ServiceQuery is what a prepared query selects.
type ServiceQuery struct {
	Service        string            `json:"Service"`
	Failover       QueryFailover     `json:"Failover"`
	OnlyPassing    bool              `json:"OnlyPassing"`
	IgnoreCheckIDs []string          `json:"IgnoreCheckIDs"`
	Near           string            `json:"Near"`
	Tags           []string          `json:"Tags"`
	NodeMeta       map[string]string `json:"NodeMeta"`
	ServiceMeta    map[string]string `json:"ServiceMeta"`
}

// QueryDNSOptions is Consul's DNS block of a query.
type QueryDNSOptions struct {
	TTL string `json:"TTL"`
}

// QueryTemplate makes a query match every name it prefixes.
type QueryTemplate struct {
	Type            string `json:"Type"`
	Regexp          string `json:"Regexp"`
	RemoveEmptyTags bool   `json:"RemoveEmptyTags"`
}

// PreparedQuery is Consul's PreparedQueryDefinition.
type PreparedQuery struct {
	ID          string          `json:"ID"`
	Name        string          `json:"Name"`
	Session     string          `json:"Session"`
	Token       string          `json:"Token"`
	Template    QueryTemplate   `json:"Template"`
	Service     ServiceQuery    `json:"Service"`
	DNS         QueryDNSOptions `json:"DNS"`
	CreateIndex uint64          `json:"CreateIndex"`
	ModifyIndex uint64          `json:"ModifyIndex"`
}

// Validate checks a query definition (not its ID).
func (q *PreparedQuery) Validate() error {
	if q.Service.Service == "" && q.Template.Type == "" {
		return &FieldError{Field: "Service.Service", Reason: "must be set"}
	}
	if q.Template.Type != "" && q.Template.Type != QueryTemplateNamePrefixMatch {
		return &FieldError{Field: "Template.Type", Reason: fmt.Sprintf("unknown type %q (want %q)", q.Template.Type, QueryTemplateNamePrefixMatch)}
	}
	if q.Service.Failover.NearestN < 0 {
		return &FieldError{Field: "Service.Failover.NearestN", Reason: "must not be negative"}
	}
	if q.DNS.TTL != "" {
		if d, err := time.ParseDuration(q.DNS.TTL); err != nil || d < 0 {
			return &FieldError{Field: "DNS.TTL", Reason: fmt.Sprintf("invalid duration %q", q.DNS.TTL)}
		}
	}
	for _, f := range []struct{ name, v string }{{"Name", q.Name}, {"Service.Service", q.Service.Service}, {"Service.Near", q.Service.Near}} {
		if len(f.v) > MaxNameLength {
			return &FieldError{Field: f.name, Reason: fmt.Sprintf("longer than %d bytes", MaxNameLength)}
		}
	}
	if len(q.Service.Tags) > MaxTags {
		return &FieldError{Field: "Service.Tags", Reason: fmt.Sprintf("more than %d tags", MaxTags)}
	}
	return nil
}

// PreparedQueryRequest creates, updates or deletes a query.
type PreparedQueryRequest struct {
	Datacenter string
	Op         PreparedQueryOp
	Query      *PreparedQuery
}

// Validate implements Validator.
func (r *PreparedQueryRequest) Validate() error {
	if r.Query == nil {
		return &FieldError{Field: "Query", Reason: "missing"}
	}
	switch r.Op {
	case PreparedQueryCreate, PreparedQueryUpdate:
		return r.Query.Validate()
	case PreparedQueryDelete:
		if r.Query.ID == "" {
			return &FieldError{Field: "ID", Reason: "missing"}
		}
		return nil
	}
	return &FieldError{Field: "Op", Reason: fmt.Sprintf("unknown op %q", r.Op)}
}

// PreparedQuerySpecificRequest reads one query by ID.
type PreparedQuerySpecificRequest struct {
	Datacenter string
	QueryID    string
	QueryOptions
}

// QuerySource is where a query runs from, for Near = "_agent".
type QuerySource struct {
	Datacenter string
	Node       string
}

// PreparedQueryExecuteRequest runs (or explains) a query by ID or name.
type PreparedQueryExecuteRequest struct {
	Datacenter    string
	QueryIDOrName string
	// Limit > 0 caps the nodes returned.
	Limit int
	// Near overrides the query's Service.Near ("_agent" = Agent.Node).
	Near  string
	Agent QuerySource
	QueryOptions
}

// PreparedQueryExecuteRemoteRequest runs a resolved query in another
// datacenter (failover).
type PreparedQueryExecuteRemoteRequest struct {
	Datacenter string
	Query      PreparedQuery
	Limit      int
	QueryOptions
}

// PreparedQueryExecuteResponse is Consul's execute answer.
type PreparedQueryExecuteResponse struct {
	Service    string
	Nodes      []CheckServiceNode
	DNS        QueryDNSOptions
	Datacenter string
	Failovers  int
	// Sorted: Nodes are in RTT order from the query's Near source (not
	// in Consul's JSON; DNS keeps the order instead of shuffling).
	Sorted bool
	QueryMeta
}

// PreparedQueryExplainResponse is Consul's explain answer: the query as
// it would run, templates rendered.
type PreparedQueryExplainResponse struct {
	Query PreparedQuery
	QueryMeta
}

// IndexedPreparedQueries lists queries.
type IndexedPreparedQueries struct {
	Queries []*PreparedQuery
	QueryMeta
}
