package raftstore

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// snapshotRetain is how many snapshots are kept on disk: the newest plus one
// fallback in case the newest turns out to be unreadable.
const snapshotRetain = 2

// NewSnapshotStore returns raft's file snapshot store rooted at dir (raft adds
// a "snapshots" sub-directory), keeping snapshotRetain snapshots.
func NewSnapshotStore(dir string, logger *zap.Logger) (raft.SnapshotStore, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	ss, err := raft.NewFileSnapshotStore(dir, snapshotRetain, zapWriter{logger})
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot store %s: %w", dir, err)
	}
	return ss, nil
}

// NewMemSnapshotStore returns an in-memory snapshot store for --dev.
func NewMemSnapshotStore() raft.SnapshotStore {
	return raft.NewInmemSnapshotStore()
}

// zapWriter turns the snapshot store's hclog text lines into zap entries.
type zapWriter struct{ l *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(line) > 0 {
			w.l.Info(string(line))
		}
	}
	return len(p), nil
}
