package fsm

import (
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// applyTxnOrReap applies a transaction (returning its *structs.TxnResponse:
// results, or the failing ops' errors with nothing applied) or a tombstone
// reap (nil). Both travel as msgpack after the type byte.
func (f *FSM) applyTxnOrReap(l *raft.Log, t structs.MessageType, s *state.Store) any {
	switch t {
	case structs.TxnRequestType:
		var req structs.TxnRequest
		if err := structs.DecodeMsgpack(l.Data[1:], &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		// Validated by the server that proposed it; checked again because
		// a bad entry must be refused by every replica alike.
		if err := req.Validate(); err != nil {
			return err
		}
		results, errs := s.Txn(l.Index, req.Ops)
		return &structs.TxnResponse{Results: results, Errors: errs}
	default:
		var req structs.TombstoneRequest
		if err := structs.DecodeMsgpack(l.Data[1:], &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		if req.Op != structs.TombstoneReap {
			return fmt.Errorf("fsm: log %d: unknown tombstone op %q", l.Index, req.Op)
		}
		s.ReapTombstones(l.Index, req.ReapIndex)
		return nil
	}
}
