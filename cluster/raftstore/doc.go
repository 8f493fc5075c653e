// Package raftstore persists hashicorp/raft's log and stable state in Pebble.
//
// One Store implements both raft.LogStore and raft.StableStore over a single
// Pebble database, so a term/vote update and the log it accompanies share one
// WAL. The package also builds the snapshot store raft needs (file-backed under
// the data dir, or in memory for --dev).
//
// Key layout (one byte prefix, so the two spaces never interleave):
//
//	"l" + big-endian uint64 index -> encoded raft.Log (see codec.go)
//	"s" + stable key              -> raw value (uint64 values are 8 bytes big-endian)
//
// Invariants a caller relies on:
//   - every write (StoreLog, StoreLogs, DeleteRange, Set, SetUint64) is one Pebble
//     batch committed with pebble.Sync before the method returns, unless
//     Options.NoSync (tests only); StoreLogs writes the whole slice atomically;
//   - FirstIndex/LastIndex are served from memory (atomics) and are 0 when the log
//     is empty; they are loaded from disk on Open and updated under the write lock;
//   - GetLog of an absent index returns raft.ErrLogNotFound;
//   - Get and GetUint64 of an absent key return ErrKeyNotFound, whose text is
//     exactly "not found": raft compares err.Error() with that string
//     (api.go, raft.go), the same contract raft-boltdb has. GetUint64 also
//     returns 0 in that case, as the StableStore doc asks.
//
// Pebble's Fatalf (unrecoverable corruption) is logged through zap and then
// panics rather than exiting the process, so the owner decides what dies.
package raftstore
