package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phase is the outcome of one measured load phase.
type phase struct {
	ops     int           // successful operations
	errs    int           // failed operations
	elapsed time.Duration // wall time of the phase
	lat     []time.Duration
	lastErr error
}

func (p phase) opsPerSec() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.ops) / p.elapsed.Seconds()
}

// pct is the q-quantile (0..1) of the successful ops' latencies, in ms.
func (p phase) pct(q float64) float64 {
	if len(p.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(p.lat))+0.5) - 1
	i = max(0, min(i, len(p.lat)-1))
	return float64(p.lat[i]) / float64(time.Millisecond)
}

// check fails the phase if nothing succeeded or more than 1% failed.
func (p phase) check(what string) error {
	if p.errs > 0 {
		logf("%s: %d of %d ops failed; last error: %v", what, p.errs, p.ops+p.errs, p.lastErr)
	}
	if p.ops == 0 {
		return fmt.Errorf("%s: no operation succeeded (last error: %v)", what, p.lastErr)
	}
	if p.errs*100 > p.ops+p.errs {
		return fmt.Errorf("%s: %d of %d ops failed (last error: %v)", what, p.errs, p.ops+p.errs, p.lastErr)
	}
	return nil
}

// opTimeout bounds any single operation.
const opTimeout = 10 * time.Second

// runLoad runs n workers calling op back to back for d (each op bounded by
// opTimeout) and records every successful op's latency. worker is the
// worker number, i its op counter.
func runLoad(ctx context.Context, n int, d time.Duration, op func(ctx context.Context, worker, i int) error) phase {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		all     []time.Duration
		errs    atomic.Int64
		lastErr atomic.Value
	)
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for i := 0; ctx.Err() == nil; i++ {
				octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
				t0 := time.Now()
				err := op(octx, w, i)
				el := time.Since(t0)
				ocancel()
				if err != nil {
					errs.Add(1)
					lastErr.Store(fmt.Errorf("%w", err))
					continue
				}
				lat = append(lat, el)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	p := phase{ops: len(all), errs: int(errs.Load()), elapsed: time.Since(start), lat: all}
	if e, ok := lastErr.Load().(error); ok {
		p.lastErr = e
	}
	slices.Sort(p.lat)
	return p
}

// measure runs op on workers concurrent workers for o.Duration as the
// phase name: the cluster's CPU is reported, the leader profiled when
// asked, and the phase returned once it passed its checks.
func measure(ctx context.Context, o *Options, c *cluster, leader *agentProc, name string, workers int, op func(ctx context.Context, worker, i int) error) (phase, error) {
	wait := profilePhase(ctx, o.ProfileDir, leader, o.Duration, name)
	cpu := newCPUMeter(c)
	p := runLoad(ctx, workers, o.Duration, op)
	wait()
	cpu.report(name)
	return p, p.check(strings.ReplaceAll(name, "_", " "))
}
