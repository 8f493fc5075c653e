package state

import (
	"context"
	"math/rand/v2"
	"time"
)

// Blocking query limits, Consul's: a query waits 5 minutes unless told
// otherwise and never longer than 10, plus up to 1/16 of the wait of random
// jitter so that clients which started together do not return together.
const (
	DefaultMaxWait = 5 * time.Minute
	MaxMaxWait     = 10 * time.Minute
	jitterFraction = 16
)

// Block is BlockKey on a set of whole tables.
func (s *Store) Block(ctx context.Context, minIndex uint64, maxWait time.Duration, tables []Table, run func() (uint64, error)) (uint64, error) {
	return s.BlockKey(ctx, minIndex, maxWait, TablesKey(tables...), run)
}

// BlockKey runs run and, while minIndex > 0 and the index it returns is <=
// minIndex, waits for a change to the data k names and runs it again. It
// returns run's last result when the index moves past minIndex, when
// maxWait (0 = DefaultMaxWait, capped at MaxMaxWait, plus jitter) passes,
// with ctx.Err() when ctx ends, and with a nil error as soon as the Store
// is abandoned by a snapshot restore: callers check AbandonCh after Block
// and, if it is closed, re-run the query against the new Store. run must
// read this Store.
func (s *Store) BlockKey(ctx context.Context, minIndex uint64, maxWait time.Duration, k Key, run func() (uint64, error)) (uint64, error) {
	if minIndex == 0 {
		return run()
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	maxWait = min(maxWait, MaxMaxWait)
	if j := int64(maxWait / jitterFraction); j > 0 {
		maxWait += time.Duration(rand.Int64N(j))
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		// Arm the watch before reading so a write between the read and the
		// wait is not missed.
		ch := s.WatchKey(k)
		idx, err := run()
		if err != nil || idx > minIndex {
			return idx, err
		}
		select {
		case <-ch:
		case <-timer.C:
			return idx, nil
		case <-ctx.Done():
			return idx, ctx.Err()
		case <-s.abandonCh:
			return idx, nil
		}
	}
}
