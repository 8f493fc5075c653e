package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairnd/cairn/cluster/snapshot"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

const (
	// snapshotRestoreTimeout bounds how long a restore waits to enter the
	// Raft pipeline and for the no-op that follows it to commit, i.e. for
	// a quorum to have installed the restored state.
	snapshotRestoreTimeout = 2 * time.Minute
	// snapshotAttempts: raft refuses a snapshot while a configuration
	// change is not yet applied; that clears within a heartbeat or two.
	snapshotAttempts = 5
)

// registerOperatorEndpoints adds the outage-recovery RPC methods:
// snapshot save/restore, raft peer removal, autopilot.
func (s *Server) registerOperatorEndpoints() {
	handle(s, structs.MethodSnapshotSave, func(ctx context.Context, a *structs.SnapshotRequest, r *structs.SnapshotResponse) error {
		q := &structs.QueryOptions{AllowStale: a.AllowStale}
		if done, err := s.forward(ctx, structs.MethodSnapshotSave, a.Datacenter, q, a, r); done {
			return err
		}
		return s.SaveSnapshot(ctx, r)
	})
	handle(s, structs.MethodSnapshotRestore, func(ctx context.Context, a *structs.SnapshotRequest, r *structs.SnapshotResponse) error {
		// Refuse a bad archive before the hop to the leader, and again on it.
		if _, err := snapshot.Decode(a.Archive); err != nil {
			return err
		}
		if done, err := s.forward(ctx, structs.MethodSnapshotRestore, a.Datacenter, nil, a, r); done {
			return err
		}
		return s.RestoreSnapshot(ctx, a.Archive, r)
	})
	handle(s, structs.MethodOperatorRaftRemovePeer, func(ctx context.Context, a *structs.RaftRemovePeerRequest, r *struct{}) error {
		if (a.ID == "") == (a.Address == "") {
			return errors.New("must specify exactly one of a peer's id or address")
		}
		if done, err := s.forward(ctx, structs.MethodOperatorRaftRemovePeer, a.Datacenter, nil, a, r); done {
			return err
		}
		return s.RemovePeer(a.ID, a.Address)
	})
	handle(s, structs.MethodOperatorRaftTransferLeader, func(ctx context.Context, a *structs.RaftTransferLeaderRequest, r *structs.TransferLeaderResponse) error {
		_, before := s.raft.LeaderWithID()
		if done, err := s.forward(ctx, structs.MethodOperatorRaftTransferLeader, a.Datacenter, nil, a, r); done {
			// A forwarded call ends as soon as this server sees another
			// leader, which is what the request asked for: that is
			// success, not an unknown outcome.
			if errors.Is(err, structs.ErrWriteOutcomeUnknown) {
				if now := s.awaitNewLeader(ctx, before); now != "" && (a.ID == "" || now == raft.ServerID(a.ID)) {
					r.Success, err = true, nil
				}
			}
			return err
		}
		if err := s.TransferLeader(a.ID); err != nil {
			return err
		}
		r.Success = true
		return nil
	})
	handle(s, structs.MethodOperatorAutopilotGetConfig, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.AutopilotConfig) error {
		if done, err := s.forward(ctx, structs.MethodOperatorAutopilotGetConfig, a.Datacenter, &a.QueryOptions, a, r); done {
			return err
		}
		*r = s.cfg.Autopilot.public()
		return nil
	})
	handle(s, structs.MethodOperatorServerHealth, func(ctx context.Context, a *structs.DCSpecificRequest, r *structs.OperatorHealthReply) error {
		// Health is the leader's view: never answered by a follower.
		q := a.QueryOptions
		q.AllowStale = false
		if done, err := s.forward(ctx, structs.MethodOperatorServerHealth, a.Datacenter, &q, a, r); done {
			return err
		}
		h := s.autopilot.health()
		if h == nil {
			return errors.New("autopilot: server health not yet known, retry shortly")
		}
		*r = *h
		return nil
	})
	handle(s, structs.MethodStatusRaftStats, func(ctx context.Context, a *struct{}, r *structs.RaftStats) error {
		*r = s.raftStats()
		return nil
	})
}

// SaveSnapshot takes a Raft snapshot of this server's state and returns
// it as an archive (see cluster/snapshot). On the leader it first waits
// for every committed entry to be applied, so the archive holds every
// write acknowledged before the call.
func (s *Server) SaveSnapshot(ctx context.Context, r *structs.SnapshotResponse) error {
	if s.IsLeader() {
		if err := s.wait(s.raft.Barrier(raftApplyTimeout)); err != nil {
			return fmt.Errorf("server: snapshot: barrier: %w", err)
		}
	}
	var (
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
		err  error
	)
	for attempt := 1; ; attempt++ {
		f := s.raft.Snapshot()
		if err = f.Error(); err == nil {
			meta, rc, err = f.Open()
		}
		if err == nil || attempt == snapshotAttempts || errors.Is(err, raft.ErrRaftShutdown) {
			break
		}
		s.log.Debug("snapshot not possible yet, retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("server: snapshot: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, snapshot.MaxStateSize+1))
	if err != nil {
		return fmt.Errorf("server: snapshot: read %s: %w", meta.ID, err)
	}
	if len(data) > snapshot.MaxStateSize {
		return fmt.Errorf("server: snapshot: state is larger than %d bytes", snapshot.MaxStateSize)
	}
	archive, err := snapshot.Encode(meta, data)
	if err != nil {
		return err
	}
	r.Index, r.Archive = meta.Index, archive
	s.log.Info("snapshot saved", zap.String("id", meta.ID), zap.Uint64("index", meta.Index), zap.Int("bytes", len(archive)))
	return nil
}

// RestoreSnapshot replaces the state of every server with the archive's,
// through Raft: the leader installs it and followers receive it as an
// InstallSnapshot. It must run on the leader. A corrupt archive, or one
// whose state the state machine cannot load, is refused before anything
// is replaced.
func (s *Server) RestoreSnapshot(ctx context.Context, archive []byte, r *structs.SnapshotResponse) error {
	a, err := snapshot.Decode(archive)
	if err != nil {
		return err
	}
	if _, err := a.Verify(); err != nil {
		return err
	}
	if !s.IsLeader() {
		return structs.ErrNotLeader
	}
	s.log.Warn("restoring state from a snapshot archive: every server's state will be replaced",
		zap.String("id", a.Meta.ID), zap.Uint64("index", a.Meta.Index), zap.Int64("bytes", a.Meta.Size))
	if err := s.raft.Restore(&a.Meta, bytes.NewReader(a.State), snapshotRestoreTimeout); err != nil {
		return fmt.Errorf("server: restore snapshot %s: %w", a.Meta.ID, err)
	}
	r.Index = s.raft.LastIndex()
	s.log.Info("snapshot restored", zap.String("id", a.Meta.ID), zap.Uint64("raft_index", r.Index))
	// The restored catalog predates the current members: put serf's view
	// back, as a new leader would.
	if ctx.Err() == nil && s.IsLeader() {
		s.reconcileAll()
	}
	return nil
}

// TransferLeader hands leadership to the voter with Raft ID id, or with id
// empty to the voter raft finds most up to date, as `consul operator raft
// transfer-leader` does. It must run on the leader and returns once the
// transfer finished (or failed: the leader then stays leader).
func (s *Server) TransferLeader(id string) error {
	var fut raft.Future
	if id == "" {
		fut = s.raft.LeadershipTransfer()
	} else {
		f := s.raft.GetConfiguration()
		if err := s.wait(f); err != nil {
			return err
		}
		var target *raft.Server
		for _, srv := range f.Configuration().Servers {
			if srv.ID == raft.ServerID(id) {
				target = &srv
				break
			}
		}
		switch {
		case target == nil:
			return fmt.Errorf("%w: id %q was not found in the Raft configuration", structs.ErrInvalidRequest, id)
		case target.ID == raft.ServerID(s.cfg.NodeName):
			return fmt.Errorf("%w: %q is already the leader", structs.ErrInvalidRequest, id)
		case target.Suffrage != raft.Voter:
			return fmt.Errorf("%w: %q is not a voter", structs.ErrInvalidRequest, id)
		}
		fut = s.raft.LeadershipTransferToServer(target.ID, target.Address)
	}
	s.log.Warn("transferring raft leadership on operator request", zap.String("to", id))
	if err := s.wait(fut); err != nil {
		return fmt.Errorf("server: leadership transfer: %w", err)
	}
	return nil
}

// awaitNewLeader returns the Raft ID of the leader once raft names one
// other than before, or "" if none is named within leaderWait.
func (s *Server) awaitNewLeader(ctx context.Context, before raft.ServerID) raft.ServerID {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		ep := s.epoch.Load() // before asking raft: a change after it ends ep
		if _, id := s.raft.LeaderWithID(); id != "" && id != before {
			return id
		}
		select {
		case <-ep.ctx.Done():
		case <-ctx.Done():
			return ""
		}
	}
}

// RemovePeer removes a server from the Raft configuration by ID or by
// address, as `consul operator raft remove-peer` does. It must run on the
// leader.
func (s *Server) RemovePeer(id, address string) error {
	f := s.raft.GetConfiguration()
	if err := s.wait(f); err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		if (id != "" && srv.ID == raft.ServerID(id)) || (address != "" && srv.Address == raft.ServerAddress(address)) {
			s.log.Warn("removing raft peer on operator request", zap.String("id", string(srv.ID)), zap.String("address", string(srv.Address)))
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("server: remove raft peer %s: %w", srv.ID, err)
			}
			return nil
		}
	}
	if id != "" {
		return fmt.Errorf("id %q was not found in the Raft configuration", id)
	}
	return fmt.Errorf("address %q was not found in the Raft configuration", address)
}
