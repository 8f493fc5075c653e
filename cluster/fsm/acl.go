package fsm

import (
	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// applyACL applies the ACL commands (MessageType 6..10, msgpack bodies).
// Each returns nil or the error the Store refused it with.
func (f *FSM) applyACL(l *raft.Log, t structs.MessageType, s *state.Store) any {
	body := l.Data[1:]
	switch t {
	case structs.ACLBootstrapRequestType:
		var req structs.ACLBootstrapRequest
		if err := structs.DecodeMsgpack(body, &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.ACLBootstrap(l.Index, &req.Token)
	case structs.ACLPolicySetRequestType:
		var req structs.ACLPolicySetRequest
		if err := structs.DecodeMsgpack(body, &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.ACLPolicySet(l.Index, &req.Policy)
	case structs.ACLPolicyDeleteRequestType:
		var req structs.ACLPolicyDeleteRequest
		if err := structs.DecodeMsgpack(body, &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.ACLPolicyDelete(l.Index, req.ID)
	case structs.ACLTokenSetRequestType:
		var req structs.ACLTokenSetRequest
		if err := structs.DecodeMsgpack(body, &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.ACLTokenSet(l.Index, &req.Token, req.Create)
	default: // ACLTokenDeleteRequestType
		var req structs.ACLTokenDeleteRequest
		if err := structs.DecodeMsgpack(body, &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.ACLTokenDelete(l.Index, req.AccessorID)
	}
}
