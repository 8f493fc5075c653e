package structs

// RPC method names served by every server on the server port and used by
// the forwarder, the agent and the HTTP API. Request → response types:
const (
	MethodCatalogRegister        = "Catalog.Register"              // RegisterRequest → WriteResponse
	MethodCatalogDeregister      = "Catalog.Deregister"            // DeregisterRequest → WriteResponse
	MethodCatalogListDatacenters = "Catalog.ListDatacenters"       // DCSpecificRequest → []string
	MethodCatalogListNodes       = "Catalog.ListNodes"             // DCSpecificRequest → IndexedNodes
	MethodCatalogListServices    = "Catalog.ListServices"          // DCSpecificRequest → IndexedServices
	MethodCatalogServiceNodes    = "Catalog.ServiceNodes"          // ServiceSpecificRequest → IndexedServiceNodes
	MethodCatalogNodeServices    = "Catalog.NodeServices"          // NodeSpecificRequest → IndexedNodeServices
	MethodHealthServiceNodes     = "Health.ServiceNodes"           // ServiceSpecificRequest → IndexedCheckServiceNodes
	MethodHealthNodeChecks       = "Health.NodeChecks"             // NodeSpecificRequest → IndexedHealthChecks
	MethodHealthServiceChecks    = "Health.ServiceChecks"          // ServiceSpecificRequest → IndexedHealthChecks
	MethodHealthChecksInState    = "Health.ChecksInState"          // ChecksInStateRequest → IndexedHealthChecks
	MethodKVSGet                 = "KVS.Get"                       // KeyRequest → IndexedDirEntries (0 or 1 entry)
	MethodKVSList                = "KVS.List"                      // KeyRequest → IndexedDirEntries
	MethodKVSListKeys            = "KVS.ListKeys"                  // KeyRequest → IndexedKeyList
	MethodKVSApply               = "KVS.Apply"                     // KVSRequest → WriteResponse
	MethodEventFire              = "Event.Fire"                    // EventFireRequest → WriteResponse
	MethodStatusLeader           = "Status.Leader"                 // DCSpecificRequest → string (leader RPC address, "" if none)
	MethodStatusPeers            = "Status.Peers"                  // DCSpecificRequest → []string
	MethodOperatorRaftConfig     = "Operator.RaftGetConfiguration" // DCSpecificRequest → RaftConfigurationResponse
	MethodStatusPing             = "Status.Ping"                   // struct{} → struct{} (health of the session)
)

// IsWriteMethod reports whether method changes state (and so must not be
// resent blindly after an unknown outcome).
func IsWriteMethod(method string) bool {
	switch method {
	case MethodCatalogRegister, MethodCatalogDeregister, MethodKVSApply, MethodEventFire, MethodSessionApply:
		return true
	case MethodSnapshotRestore, MethodOperatorRaftRemovePeer, MethodOperatorRaftTransferLeader:
		return true
	case MethodTxnApply:
	case MethodACLBootstrap, MethodACLPolicySet, MethodACLPolicyDelete, MethodACLTokenSet, MethodACLTokenDelete:
		return true
	case MethodPreparedQueryApply, MethodCoordinateUpdate:
		return true
	}
	return false
}

// RaftServer is one entry of the Raft configuration.
type RaftServer struct {
	ID       string `json:"ID"`
	Node     string `json:"Node"`
	Address  string `json:"Address"`
	Leader   bool   `json:"Leader"`
	Voter    bool   `json:"Voter"`
	Protocol string `json:"ProtocolVersion"`
}

// RaftConfigurationResponse is /v1/operator/raft/configuration.
type RaftConfigurationResponse struct {
	Servers []*RaftServer `json:"Servers"`
	Index   uint64        `json:"Index"`
}
