package main

import (
	"context"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/forwarder"
)

// The index-watch comparison: sessions that keep their hot keys fresh as
// client agents did before subscriptions (cache/refresh.go before issue
// 14): one blocking read on the catalog index probe per session and, each
// time it moves, a re-fetch of every hot key.

// indexProbe is the service name whose health read reports and blocks on
// the whole catalog's index (cluster/server catalogIndexProbe).
const indexProbe = "_cairn-catalog-index"

const (
	// watchWait is the blocking read's wait, as the cache's WatchWait.
	watchWait = 30 * time.Second
	// watchRetry is the pause after a failed read.
	watchRetry = 100 * time.Millisecond
)

// watchSession is one old-style client agent: a forwarder and a loop.
type watchSession struct {
	fwd       *forwarder.Forwarder
	hot       []int
	last      []int
	snapshots atomic.Int64
	stop      func()
}

func startWatchSession(ctx context.Context, src net.Addr, addrs []string, hot []int, fo *fanout) (*watchSession, error) {
	s := &watchSession{hot: hot, last: make([]int, len(hot))}
	cfg := forwarder.DefaultConfig()
	cfg.RebalanceInterval = time.Hour
	cfg.LocalAddr = src
	s.fwd = forwarder.New(cfg, nil, nil)
	s.fwd.SetServers(addrs)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.fwd.Run(runCtx) }()
	go func() { defer wg.Done(); s.loop(runCtx, fo) }()
	s.stop = func() { cancel(); s.fwd.Close(); wg.Wait() }
	return s, nil
}

func (s *watchSession) ready() bool { return int(s.snapshots.Load()) == len(s.hot) }
func (s *watchSession) close()      { s.stop() }

// fetch reads svc's health (stale, as DNS does) and returns its change seq.
func (s *watchSession) fetch(ctx context.Context, svc int) (int, error) {
	var out structs.IndexedCheckServiceNodes
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := s.fwd.Call(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{
		Datacenter: "dc1", ServiceName: fleetService(svc), QueryOptions: structs.QueryOptions{AllowStale: true},
	}, &out, true)
	if err != nil {
		return -1, err
	}
	return changeSeq(out.Nodes), nil
}

// loop fetches every hot key once, then follows the catalog index and
// re-fetches every hot key each time it moves, until ctx ends.
func (s *watchSession) loop(ctx context.Context, fo *fanout) {
	for slot, svc := range s.hot {
		for {
			seq, err := s.fetch(ctx, svc)
			if err == nil {
				s.last[slot] = seq
				s.snapshots.Add(1)
				break
			}
			if !sleepCtx(ctx, watchRetry) {
				return
			}
		}
	}
	var idx uint64
	for ctx.Err() == nil {
		q := structs.QueryOptions{AllowStale: true, MinQueryIndex: idx}
		if idx > 0 {
			q.MaxQueryTime = watchWait
		}
		var out structs.IndexedCheckServiceNodes
		rctx, cancel := context.WithTimeout(ctx, watchWait+5*time.Second)
		err := s.fwd.Call(rctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{
			Datacenter: "dc1", ServiceName: indexProbe, QueryOptions: q,
		}, &out, true)
		cancel()
		if err != nil {
			if !sleepCtx(ctx, watchRetry) {
				return
			}
			continue
		}
		if out.Index == idx {
			continue
		}
		first := idx == 0
		idx = max(out.Index, 1)
		if first {
			continue // the keys were just fetched
		}
		s.refreshRound(ctx, fo)
	}
}

// refreshWorkers bounds the fetches of one round (cache/catalog.go's).
const refreshWorkers = 16

// refreshRound re-fetches every hot key, refreshWorkers at a time, and
// records the changes it sees.
func (s *watchSession) refreshRound(ctx context.Context, fo *fanout) {
	seqs := make([]int, len(s.hot))
	sem := make(chan struct{}, refreshWorkers)
	var wg sync.WaitGroup
	for slot, svc := range s.hot {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			seq, err := s.fetch(ctx, svc)
			if err != nil {
				seq = -1
			}
			seqs[slot] = seq
			if seq > s.last[slot] {
				fo.saw(svc, s.last[slot], seq, time.Now(), s.fwd.Server())
			}
		}()
	}
	wg.Wait()
	for slot, seq := range seqs {
		s.last[slot] = max(s.last[slot], seq)
	}
}

// fleetIndexWatch is the watch phase: --watch-clients index-watch
// sessions and the same churn for --watch-churn.
func fleetIndexWatch(ctx context.Context, o *Options, c *cluster, leader *agentProc, addrs []string, r *rand.Rand, seqBase int) error {
	f := &o.Fleet
	before, err := sampleServers(ctx, c)
	if err != nil {
		return err
	}
	sets := hotSets(r, f.WatchClients, f.Services, f.Hot)
	fo := newFanout(f.Services, sets, seqBase)
	logf("starting %d index-watch sessions (%d hot services each)", f.WatchClients, f.Hot)
	members, err := startFleet(ctx, addrs, sets, fo, func(ctx context.Context, src net.Addr, addrs []string, hot []int, fo *fanout) (fleetMember, error) {
		return startWatchSession(ctx, src, addrs, hot, fo)
	})
	if err != nil {
		return err
	}
	defer stopFleet(members)
	return measureFleet(ctx, o, c, leader, fo, before, f.WatchClients, f.WatchChurn, "watch")
}
