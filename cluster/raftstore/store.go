package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

const (
	prefixLog    = 'l'
	prefixStable = 's'
)

// ErrKeyNotFound is returned by Get and GetUint64 for an absent key. Its text
// must stay "not found": raft matches on err.Error(), not on identity.
var ErrKeyNotFound = errors.New("not found")

// Options tunes Open. The zero value opens an on-disk store with synced writes.
type Options struct {
	// FS is the filesystem Pebble uses; nil means the OS disk. Pass vfs.NewMem()
	// for --dev, where nothing must survive the process.
	FS vfs.FS
	// Logger receives Pebble's messages; nil discards them.
	Logger *zap.Logger
	// NoSync skips fsync on commit. Tests only: it voids Raft's durability.
	NoSync bool
}

// Store is a raft.LogStore and raft.StableStore backed by one Pebble database.
// It is safe for concurrent use.
type Store struct {
	db    *pebble.DB
	dir   string
	wopts *pebble.WriteOptions

	// mu serialises writers so the cached bounds always match what the last
	// committed batch left on disk. Readers never take it.
	mu      sync.Mutex
	scratch []byte // encode buffer reused by writers under mu
	first   atomic.Uint64
	last    atomic.Uint64
	closed  atomic.Bool
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	popts := &pebble.Options{
		FS:     opts.FS,
		Logger: pebbleLogger{logger.Sugar()},
	}
	if popts.FS == nil {
		popts.FS = vfs.Default
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, wopts: pebble.Sync}
	if opts.NoSync {
		s.wopts = pebble.NoSync
	}
	if err := s.loadBounds(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: open %s: read log bounds: %w", dir, err)
	}
	logger.Info("raft store opened", zap.String("dir", dir),
		zap.Uint64("first_index", s.first.Load()), zap.Uint64("last_index", s.last.Load()),
		zap.Bool("sync", !opts.NoSync))
	return s, nil
}

// Close closes the database. Calling it again is a no-op.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftstore: close %s: %w", s.dir, err)
	}
	return nil
}

// loadBounds reads the first and last log index from disk into the cache.
func (s *Store) loadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixLog},
		UpperBound: []byte{prefixLog + 1},
	})
	if err != nil {
		return err
	}
	var first, last uint64
	if it.First() {
		first = binary.BigEndian.Uint64(it.Key()[1:])
		it.Last()
		last = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		return err
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// FirstIndex returns the lowest stored log index, 0 when the log is empty.
func (s *Store) FirstIndex() (uint64, error) { return s.first.Load(), nil }

// LastIndex returns the highest stored log index, 0 when the log is empty.
func (s *Store) LastIndex() (uint64, error) { return s.last.Load(), nil }

// GetLog reads the entry at index into log, or returns raft.ErrLogNotFound.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	val, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	err = decodeLog(index, val, log)
	_ = closer.Close()
	if err != nil {
		return fmt.Errorf("raftstore: decode log %d: %w", index, err)
	}
	return nil
}

// StoreLog stores one entry.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores the entries in one synced batch: all or none are written.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	b := s.db.NewBatch()
	defer b.Close()
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, l := range logs {
		s.scratch = appendLog(s.scratch[:0], l)
		// Batch.Set copies key and value, so scratch can be reused.
		if err := b.Set(logKey(l.Index), s.scratch, nil); err != nil {
			return fmt.Errorf("raftstore: store log %d: %w", l.Index, err)
		}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}
	if err := b.Commit(s.wopts); err != nil {
		return fmt.Errorf("raftstore: store logs %d..%d: %w", lo, hi, err)
	}
	if first := s.first.Load(); first == 0 || lo < first {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
	return nil
}

// DeleteRange deletes entries min..max inclusive with one range tombstone.
func (s *Store) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	end := []byte{prefixLog + 1}
	if max < math.MaxUint64 {
		end = logKey(max + 1)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(logKey(min), end, nil); err != nil {
		return fmt.Errorf("raftstore: delete logs %d..%d: %w", min, max, err)
	}
	if err := b.Commit(s.wopts); err != nil {
		return fmt.Errorf("raftstore: delete logs %d..%d: %w", min, max, err)
	}
	// Re-read rather than do arithmetic: a range in the middle of the log (which
	// raft never asks for, but the interface allows) must not corrupt the bounds.
	if err := s.loadBounds(); err != nil {
		return fmt.Errorf("raftstore: delete logs %d..%d: reload bounds: %w", min, max, err)
	}
	return nil
}

func stableKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = prefixStable
	copy(k[1:], key)
	return k
}

// Set stores val under key.
func (s *Store) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Set(stableKey(key), val, s.wopts); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value under key, or ErrKeyNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	val, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	// Copy: val is only valid until closer.Close. A present-but-empty value
	// comes back as an empty, non-nil slice.
	out := make([]byte, len(val))
	copy(out, val)
	_ = closer.Close()
	return out, nil
}

// SetUint64 stores val under key as 8 big-endian bytes.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value under key; 0 and ErrKeyNotFound when absent.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftstore: get uint64 %q: value is %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// pebbleLogger routes Pebble's log lines into zap. Pebble's Infof is chatty
// (every flush and compaction), so it goes to Debug.
type pebbleLogger struct{ l *zap.SugaredLogger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debugf(format, args...) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Errorf(format, args...) }

// Fatalf is called on unrecoverable corruption. Panicking instead of exiting
// leaves the decision to the process owner and keeps tests alive.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("raftstore: pebble: " + msg)
}
