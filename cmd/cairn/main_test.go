package main

import (
	"runtime"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// TestCommandRunHoldsParserOnlyWhenItMust: the agent's run leaves kong's
// parsed model to the collector (it would otherwise live as long as the
// agent); a short command's run, which goes through kong's Context.Run,
// keeps it, which shows the check can see a held model.
func TestCommandRunHoldsParserOnlyWhenItMust(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantFreed bool
	}{
		{[]string{"agent", "--dev"}, true},
		{[]string{"version"}, false},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			var cli CLI
			p, err := kong.New(&cli, kong.Name("cairn"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, err := p.Parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			freed := make(chan struct{})
			runtime.AddCleanup(ctx, func(ch chan struct{}) { close(ch) }, freed)
			run := commandRun(ctx, &cli)
			ctx, p = nil, nil
			got := false
			for deadline := time.Now().Add(2 * time.Second); !got && time.Now().Before(deadline); {
				runtime.GC()
				select {
				case <-freed:
					got = true
				case <-time.After(20 * time.Millisecond):
				}
			}
			runtime.KeepAlive(run)
			if got != tc.wantFreed {
				t.Fatalf("%v: kong's context freed while the run is held = %v, want %v", tc.args, got, tc.wantFreed)
			}
		})
	}
}
