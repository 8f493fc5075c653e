// Command cairnbench runs Cairn's end-to-end benchmarks against real
// `cairn agent` processes it starts itself on loopback ports the kernel
// picks (port 0, read back from each agent's --ready-file; each
// with its own temp data dir, removed afterwards). Every benchmark is
// bounded in time and prints its results as `bench key=value ...` lines on
// stdout; everything else (progress, agent log tails) goes to stderr.
//
//	go run ./cmd/cairnbench --bench raft --bin bin/cairn
//
// One file per benchmark: it calls register from an init func with its
// name and a run function, and may define its own flags there too.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Options are the flags shared by every benchmark.
type Options struct {
	Bin         string        // the cairn binary (make build: bin/cairn)
	Duration    time.Duration // length of each measured phase
	Writers     int           // concurrent writers (raft)
	Concurrency int           // concurrent HTTP clients (http)
	ProfileDir  string        // if set: agents run with CAIRN_PPROF=1 and the leader's CPU profile is saved here per phase
	KeepLogs    bool          // keep the agents' data dirs and logs

	Fleet fleetOptions // fleet
}

type benchmark struct {
	help string
	run  func(ctx context.Context, o *Options) error
}

var benches = map[string]benchmark{}

// register adds a benchmark; call it from an init func.
func register(name, help string, run func(ctx context.Context, o *Options) error) {
	if _, dup := benches[name]; dup {
		panic("cairnbench: duplicate benchmark " + name)
	}
	benches[name] = benchmark{help: help, run: run}
}

// logf writes progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cairnbench: "+format+"\n", args...)
}

// result prints one bench line to stdout.
func result(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "bench "+format+"\n", args...)
}

func names() []string {
	var n []string
	for k := range benches {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func main() {
	var o Options
	name := flag.String("bench", "", "benchmark to run: "+strings.Join(names(), "|"))
	flag.StringVar(&o.Bin, "bin", "bin/cairn", "path of the cairn binary (make build)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each measured phase (max 2m)")
	flag.IntVar(&o.Writers, "writers", 128, "concurrent writers (raft)")
	flag.IntVar(&o.Concurrency, "concurrency", 64, "concurrent HTTP clients (http)")
	flag.StringVar(&o.ProfileDir, "profile-dir", "", "run agents with CAIRN_PPROF=1 and save the leader's CPU profile of each phase here")
	flag.BoolVar(&o.KeepLogs, "keep", false, "keep the agents' data dirs and logs")
	o.Fleet.flags(flag.CommandLine)
	total := flag.Duration("timeout", 5*time.Minute, "hard limit on the whole run")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cairnbench --bench NAME [flags]\n\nbenchmarks:\n")
		for _, n := range names() {
			fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, benches[n].help)
		}
		fmt.Fprintln(os.Stderr, "\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	b, ok := benches[*name]
	if !ok {
		flag.Usage()
		os.Exit(2)
	}
	if o.Duration <= 0 || o.Duration > 2*time.Minute {
		logf("--duration must be in (0, 2m]")
		os.Exit(2)
	}
	if o.Writers < 1 || o.Writers > 4096 || o.Concurrency < 1 || o.Concurrency > 4096 {
		logf("--writers and --concurrency must be in [1, 4096]")
		os.Exit(2)
	}
	if err := o.Fleet.validate(); err != nil {
		logf("%v", err)
		os.Exit(2)
	}
	if _, err := os.Stat(o.Bin); err != nil {
		logf("cairn binary: %v (run make build, or pass --bin)", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *total)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := b.run(ctx, &o)
	stop()
	cancel()
	if err != nil {
		logf("%s: %v", *name, err)
		os.Exit(1)
	}
}
