package structs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// ACL message types (see MessageType).
const (
	ACLBootstrapRequestType    MessageType = 6
	ACLPolicySetRequestType    MessageType = 7
	ACLPolicyDeleteRequestType MessageType = 8
	ACLTokenSetRequestType     MessageType = 9
	ACLTokenDeleteRequestType  MessageType = 10
)

// Well-known ACL IDs, Consul's.
const (
	ACLPolicyGlobalManagementID   = "00000000-0000-0000-0000-000000000001"
	ACLPolicyGlobalManagementName = "global-management"
	ACLTokenAnonymousID           = "00000000-0000-0000-0000-000000000002"
	ACLTokenAnonymousSecret       = "anonymous"
)

// ACL RPC methods. Every one of them but ACL.Bootstrap and ACL.TokenSelf
// needs acl read (lists, reads) or acl write (changes).
const (
	MethodACLBootstrap    = "ACL.Bootstrap"    // ACLBootstrapRequest → ACLToken
	MethodACLPolicySet    = "ACL.PolicySet"    // ACLPolicySetRequest → ACLPolicy
	MethodACLPolicyDelete = "ACL.PolicyDelete" // ACLPolicyDeleteRequest → WriteResponse
	MethodACLPolicyRead   = "ACL.PolicyRead"   // ACLPolicyReadRequest → ACLPolicy (ErrACLNotFound)
	MethodACLPolicyList   = "ACL.PolicyList"   // DCSpecificRequest → IndexedACLPolicies
	MethodACLTokenSet     = "ACL.TokenSet"     // ACLTokenSetRequest → ACLToken
	MethodACLTokenDelete  = "ACL.TokenDelete"  // ACLTokenDeleteRequest → WriteResponse
	MethodACLTokenRead    = "ACL.TokenRead"    // ACLTokenReadRequest → ACLToken (ErrACLNotFound)
	MethodACLTokenList    = "ACL.TokenList"    // DCSpecificRequest → IndexedACLTokens
	// MethodACLResolve returns the caller's (header) token with its
	// policies, for client agents' own authorizers; no permission needed.
	MethodACLResolve = "ACL.Resolve" // DCSpecificRequest → ACLResolution
)

// ACL errors. ErrPermissionDenied's text is Consul's 403 body.
var (
	ErrPermissionDenied = errors.New("Permission denied") //nolint:staticcheck // Consul's exact text
	ErrACLNotFound      = errors.New("ACL not found")
	ErrACLBootstrapDone = errors.New("ACL bootstrap no longer allowed")
	ErrACLDisabled      = errors.New("ACL support disabled")
)

// ACLPolicyLink names a policy from a token.
type ACLPolicyLink struct {
	ID   string `json:"ID"`
	Name string `json:"Name"`
}

// ACLPolicy is Consul's ACL policy.
type ACLPolicy struct {
	ID          string   `json:"ID"`
	Name        string   `json:"Name"`
	Description string   `json:"Description"`
	Rules       string   `json:"Rules"`
	Datacenters []string `json:"Datacenters"`
	CreateIndex uint64   `json:"CreateIndex"`
	ModifyIndex uint64   `json:"ModifyIndex"`
}

// ACLToken is Consul's ACL token. SecretID is the credential.
type ACLToken struct {
	AccessorID  string          `json:"AccessorID"`
	SecretID    string          `json:"SecretID"`
	Description string          `json:"Description"`
	Policies    []ACLPolicyLink `json:"Policies"`
	Local       bool            `json:"Local"`
	CreateTime  time.Time       `json:"CreateTime"`
	CreateIndex uint64          `json:"CreateIndex"`
	ModifyIndex uint64          `json:"ModifyIndex"`
}

// Redacted returns a copy without the secret, for callers without acl
// write (Consul shows "<hidden>").
func (t *ACLToken) Redacted() *ACLToken {
	c := *t
	c.SecretID = "<hidden>"
	return &c
}

// ACLBootstrapRequest creates the first management token.
type ACLBootstrapRequest struct {
	Datacenter string
	Token      ACLToken
}

// ACLPolicySetRequest creates (empty ID) or replaces a policy.
type ACLPolicySetRequest struct {
	Datacenter string
	Policy     ACLPolicy
}

// ACLPolicyDeleteRequest deletes a policy by ID.
type ACLPolicyDeleteRequest struct {
	Datacenter string
	ID         string
}

// ACLPolicyReadRequest reads a policy by ID, or by Name when ID is empty.
type ACLPolicyReadRequest struct {
	Datacenter string
	ID         string
	Name       string
	QueryOptions
}

// ACLTokenSetRequest creates (empty AccessorID) or replaces a token.
// Policies may name policies by ID or by Name.
type ACLTokenSetRequest struct {
	Datacenter string
	Token      ACLToken
	// Create refuses to replace an existing token (PUT /v1/acl/token).
	Create bool
}

// ACLTokenDeleteRequest deletes a token by accessor ID.
type ACLTokenDeleteRequest struct {
	Datacenter string
	AccessorID string
}

// ACLTokenReadRequest reads a token by accessor, or the caller's own
// token (Self: the secret in the request header).
type ACLTokenReadRequest struct {
	Datacenter string
	AccessorID string
	Self       bool
	QueryOptions
}

type IndexedACLPolicies struct {
	Policies []*ACLPolicy
	QueryMeta
}

type IndexedACLTokens struct {
	Tokens []*ACLToken
	QueryMeta
}

// ACLResolution is a token's identity and the rules of its policies.
type ACLResolution struct {
	AccessorID string
	Management bool
	Rules      []string
	// Found is false for an unknown secret (Consul: "ACL not found").
	Found bool
}

// GenerateUUID returns a random RFC 4122 version 4 UUID.
func GenerateUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
