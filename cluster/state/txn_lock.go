package state

import (
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// txnLock runs a lock or unlock op. Callers hold mu and saved the key.
func (s *Store) txnLock(idx uint64, op *structs.TxnKVOp) ([]structs.TxnResult, error) {
	return nil, fmt.Errorf("verb %q needs sessions, which this server does not have yet", op.Verb)
}
