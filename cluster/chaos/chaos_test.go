package chaos

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// shortDuration is one trial of `make test`: room for one or two faults.
const shortDuration = 15 * time.Second

// Defaults of `make chaos` (CHAOS_TRIALS, CHAOS_DURATION).
const (
	defaultTrials   = 20
	defaultDuration = 60 * time.Second
)

func binary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-chaos-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return Binary(t, dir)
}

// seed is CHAOS_SEED when set (to replay a trial), else fresh.
func seed(t *testing.T, trial int) uint64 {
	t.Helper()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := ParseSeed(s)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		return v + uint64(trial)
	}
	return uint64(time.Now().UnixNano())
}

func selected(info NemesisInfo) bool {
	want := os.Getenv("CHAOS_NEMESIS")
	return want == "" || want == info.Name
}

func skipUnusable(t *testing.T, info NemesisInfo) {
	t.Helper()
	if err := Usable(info); err != nil {
		if errors.Is(err, errSkip) {
			t.Skipf("nemesis %s: %v", info.Name, err)
		}
		t.Skipf("nemesis %s cannot run here: %v", info.Name, err)
	}
}

// TestChaosShort is `make test`'s share: one short trial per nemesis,
// each failing on any illegal history, lost or duplicated write,
// divergent replica or unexpected error log.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault injection (≈20 s per nemesis)")
	}
	if os.Getenv("CHAOS_TRIALS") != "" {
		t.Skip("CHAOS_TRIALS set: TestChaos runs the long trials")
	}
	bin := binary(t)
	for _, info := range Nemeses() {
		if !selected(info) {
			continue
		}
		t.Run(info.Name, func(t *testing.T) {
			skipUnusable(t, info)
			s := seed(t, 0)
			t.Logf("nemesis=%s seed=%d", info.Name, s)
			res := Run(t, Config{Nemesis: info, Seed: s, Duration: shortDuration, Binary: bin})
			t.Logf("faults=%d %s", res.Faults, res.Report.String())
			if !res.Report.OK() {
				t.Errorf("nemesis=%s seed=%d: %s", info.Name, s, res.Report.String())
			}
		})
	}
}

// TestChaos is `make chaos`: CHAOS_TRIALS trials of CHAOS_DURATION per
// nemesis, one summary line per nemesis on stdout.
func TestChaos(t *testing.T) {
	ts := os.Getenv("CHAOS_TRIALS")
	if ts == "" {
		t.Skip("set CHAOS_TRIALS (make chaos)")
	}
	trials, err := strconv.Atoi(ts)
	if err != nil || trials < 1 {
		t.Fatalf("CHAOS_TRIALS=%q: want a positive integer", ts)
	}
	dur := defaultDuration
	if d := os.Getenv("CHAOS_DURATION"); d != "" {
		if dur, err = time.ParseDuration(d); err != nil {
			t.Fatalf("CHAOS_DURATION=%q: %v", d, err)
		}
	}
	lanes := 1
	if p := os.Getenv("CHAOS_PARALLEL"); p != "" {
		if lanes, err = strconv.Atoi(p); err != nil || lanes < 1 || lanes > maxLanes {
			t.Fatalf("CHAOS_PARALLEL=%q: want 1–%d", p, maxLanes)
		}
	}
	first := 0
	if f := os.Getenv("CHAOS_LANE_FIRST"); f != "" {
		if first, err = strconv.Atoi(f); err != nil || first < 0 || first+lanes > maxLanes {
			t.Fatalf("CHAOS_LANE_FIRST=%q with CHAOS_PARALLEL=%d: lanes must lie in 0–%d", f, lanes, maxLanes-1)
		}
	}
	// Each nemesis takes a free lane (its own addresses, uids and iptables
	// chains) for all its trials; with one lane they run one after another.
	free := make(chan int, lanes)
	for l := first; l < first+lanes; l++ {
		free <- l
	}
	bin := binary(t)
	for _, info := range Nemeses() {
		if !selected(info) {
			continue
		}
		t.Run(info.Name, func(t *testing.T) {
			if lanes > 1 {
				t.Parallel()
			}
			if err := Usable(info); err != nil {
				fmt.Printf("chaos nemesis=%s skipped: %v\n", info.Name, err)
			}
			skipUnusable(t, info)
			lane := <-free
			defer func() { free <- lane }()
			sum := Summary{Nemesis: info.Name}
			for i := 0; i < trials; i++ {
				s := seed(t, i)
				var res *Result
				t.Run(fmt.Sprintf("trial%d", i), func(t *testing.T) {
					t.Logf("nemesis=%s trial=%d seed=%d lane=%d", info.Name, i, s, lane)
					res = Run(t, Config{Nemesis: info, Seed: s, Duration: dur, Binary: bin, Lane: lane})
					t.Logf("faults=%d %s", res.Faults, res.Report.String())
					if !res.Report.OK() {
						t.Errorf("nemesis=%s seed=%d artefacts=%s: %s", info.Name, s, res.Dir, res.Report.String())
					}
				})
				if res != nil {
					sum.Add(res)
				}
			}
			fmt.Println(sum.String())
		})
	}
}
