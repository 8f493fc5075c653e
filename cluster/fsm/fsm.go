package fsm

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// FSM applies Raft log entries to a state.Store. raft calls Apply,
// ApplyBatch, Snapshot and Restore from one goroutine; State and Applied
// are safe to call from any.
type FSM struct {
	logger  *zap.Logger
	state   atomic.Pointer[state.Store]
	applied atomic.Uint64
	pub     Publisher
}

// Publisher hears of every change applied: Changed is installed as each
// Store's commit hook, Reset is called when Restore replaces the Store.
type Publisher interface {
	Changed(idx uint64, services, nodes []string)
	Reset()
}

// SetPublisher installs p; call it before raft starts (restores included).
func (f *FSM) SetPublisher(p Publisher) {
	f.pub = p
	f.state.Load().SetCommitHook(p.Changed)
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an FSM over an empty Store. A nil logger discards logs.
func New(logger *zap.Logger) *FSM {
	if logger == nil {
		logger = zap.NewNop()
	}
	f := &FSM{logger: logger}
	f.state.Store(state.New())
	return f
}

// State returns the current Store. It changes on Restore.
func (f *FSM) State() *state.Store {
	return f.state.Load()
}

// Applied returns how many command entries the FSM has applied (rejected
// ones included), for cairn_raft_applies_total.
func (f *FSM) Applied() uint64 {
	return f.applied.Load()
}

// Apply applies one log entry; see the package doc for its return value.
func (f *FSM) Apply(l *raft.Log) any {
	return f.apply(l)
}

// ApplyBatch applies entries in order, returning one
// response per entry.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *FSM) apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.applied.Add(1)
	if len(l.Data) == 0 {
		return fmt.Errorf("fsm: log %d: empty command", l.Index)
	}
	t := structs.MessageType(l.Data[0])
	// As Consul: the flag says "skippable if unknown"; a known type is
	// applied whether or not it carries the flag.
	ignorable := t&structs.IgnoreUnknownTypeFlag != 0
	t &^= structs.IgnoreUnknownTypeFlag
	s := f.state.Load()
	switch t {
	case structs.RegisterRequestType:
		var req structs.RegisterRequest
		if err := structs.DecodeCommand(l.Data[1:], &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.EnsureRegistration(l.Index, &req)
	case structs.DeregisterRequestType:
		var req structs.DeregisterRequest
		if err := structs.DecodeCommand(l.Data[1:], &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return s.Deregister(l.Index, &req)
	case structs.KVSRequestType:
		var req structs.KVSRequest
		if err := structs.DecodeCommand(l.Data[1:], &req); err != nil {
			return f.decodeErr(l, t, err)
		}
		return applyKVS(s, l.Index, &req)
	}
	if ignorable {
		f.logger.Warn("ignoring unknown message type in raft log (written by a newer server and marked ignorable); upgrade this server",
			zap.Uint64("index", l.Index), zap.Uint8("type", uint8(t)))
		return nil
	}
	f.stop(l, fmt.Errorf("%w %d", structs.ErrUnknownMessageTyp, t))
	return nil // unreachable: stop panics
}

// stop halts this server: the entry at l was committed by the cluster but
// this server cannot apply it, so carrying on would leave its state behind
// every replica that did (a newer server wrote it during a rolling
// upgrade). A panic on raft's apply goroutine ends the process, as Consul
// does; the operator upgrades the binary and restarts it.
func (f *FSM) stop(l *raft.Log, err error) {
	err = fmt.Errorf("fsm: log %d: %w: cannot apply a committed entry; stopping rather than diverging from the other servers (upgrade this server)", l.Index, err)
	f.logger.Error("stopping: committed raft entry cannot be applied", zap.Uint64("index", l.Index), zap.Error(err))
	panic(err)
}

func applyKVS(s *state.Store, idx uint64, req *structs.KVSRequest) any {
	e := &req.DirEnt
	switch req.Op {
	case structs.KVSet:
		return s.KVSSet(idx, e)
	case structs.KVDelete:
		return s.KVSDelete(idx, e.Key)
	case structs.KVDeleteTree:
		return s.KVSDeleteTree(idx, e.Key)
	case structs.KVCAS:
		ok, err := s.KVSSetCAS(idx, e)
		if err != nil {
			return err
		}
		return ok
	case structs.KVDeleteCAS:
		ok, err := s.KVSDeleteCAS(idx, e.ModifyIndex, e.Key)
		if err != nil {
			return err
		}
		return ok
	}
	return fmt.Errorf("fsm: log %d: unknown KV op %q", idx, req.Op)
}

// decodeErr rejects an undecodable entry of a known type: every replica
// decodes the same bytes the same way, so all reject it. An entry in a
// newer encoding than this server knows is another matter: the servers
// that know it apply it, so this one stops.
func (f *FSM) decodeErr(l *raft.Log, t structs.MessageType, err error) error {
	if errors.Is(err, structs.ErrNewerCommandVersion) {
		f.stop(l, fmt.Errorf("decode message type %d: %w", t, err))
	}
	return fmt.Errorf("fsm: log %d: decode message type %d: %w", l.Index, t, err)
}

// Snapshot captures the current Store; persisting happens later, off the
// apply goroutine, while applies continue.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{snap: f.state.Load().Snapshot()}, nil
}

// Restore replaces the Store with the one in rc and abandons the old one.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := state.Restore(rc)
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if f.pub != nil {
		s.SetCommitHook(f.pub.Changed)
	}
	old := f.state.Swap(s)
	old.Abandon()
	if f.pub != nil {
		f.pub.Reset()
	}
	f.logger.Info("restored state from snapshot", zap.Uint64("index", s.Index()))
	return nil
}

// snapshot adapts a state.Snapshot to raft.FSMSnapshot.
type snapshot struct {
	snap *state.Snapshot
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
