// Package snapshot owns the on-disk format of a Cairn snapshot archive, the
// file `cairn snapshot save` writes and `/v1/snapshot` carries: the shape of
// Consul's archive, a gzip-compressed tar of three members in this order,
//
//	meta.json   the raft.SnapshotMeta of the snapshot (ID, Index, Term, ...)
//	state.bin   the FSM snapshot stream (cluster/state Persist format)
//	SHA256SUMS  "<hex sha256>  <name>" for meta.json and state.bin
//
// Invariants a caller relies on:
//   - Read returns an Archive only when every member is present exactly
//     once, no other member exists, each SHA-256 matches, the gzip CRC is
//     good and meta.Size equals the state length. Any corruption or
//     truncation is an error wrapping ErrCorrupt, and nothing is returned
//     that a restore could act on.
//   - Every size is bounded before it is read (MaxStateSize, maxMetaSize),
//     so a hostile archive cannot exhaust memory.
//   - SaveFile is atomic: it writes a temp file in the target directory,
//     fsyncs it, renames it over the target and fsyncs the directory; a
//     crash leaves the old file or the new one, never a partial one.
//
// Decisions: the archive is held in memory (it travels as one RPC frame
// between agent and leader, so it is bounded by the RPC frame limit, 8 MiB
// compressed by default); streaming large archives is left for later.
package snapshot
