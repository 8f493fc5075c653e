package main

import (
	"math/rand"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestHotSets: every set has hot distinct services in range, and the
// draw is skewed (service 0 is held far more often than the median one).
func TestHotSets(t *testing.T) {
	sets := hotSets(rand.New(rand.NewSource(1)), 2000, 1000, 20)
	held := make([]int, 1000)
	for i, set := range sets {
		if len(set) != 20 {
			t.Fatalf("set %d has %d services, want 20", i, len(set))
		}
		seen := map[int]bool{}
		for _, s := range set {
			if s < 0 || s >= 1000 || seen[s] {
				t.Fatalf("set %d: service %d out of range or repeated: %v", i, s, set)
			}
			seen[s] = true
			held[s]++
		}
	}
	if held[0] < 1000 || held[500] > 100 {
		t.Fatalf("not Zipf-skewed: service 0 held by %d sessions, service 500 by %d", held[0], held[500])
	}
}

// TestFanout: a session that sees a later change of a service is credited
// with the earlier ones it supersedes; latency counts from the ack (0 if
// the event came first); undelivered pairs are missing.
func TestFanout(t *testing.T) {
	sets := [][]int{{1, 2}, {1}} // service 1: 2 subscribers, service 2: 1
	fo := newFanout(3, sets, 10)
	t0 := time.Unix(1000, 0)
	a := fo.begin(1) // 11
	b := fo.begin(1) // 12
	c := fo.begin(2) // 13
	if a != 11 || b != 12 || c != 13 || fo.last() != 13 {
		t.Fatalf("seqs %d %d %d last %d, want 11 12 13 13", a, b, c, fo.last())
	}
	fo.acked(a, t0)
	fo.acked(b, t0.Add(time.Second))
	fo.acked(c, t0)
	fo.saw(1, 0, b, t0.Add(2*time.Second), "s1") // session 0 jumps to 12: 11 and 12 delivered
	fo.saw(1, 0, a, t0.Add(-time.Second), "s1")  // session 1 sees 11 before its ack
	fo.saw(1, a, b, t0.Add(3*time.Second), "s1") // then 12
	if fo.complete() {
		t.Fatal("complete with service 2's change undelivered")
	}
	lat, deliveries, missing := fo.outcome()
	if deliveries != 4 || missing != 1 {
		t.Fatalf("deliveries %d missing %d, want 4 and 1", deliveries, missing)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 2 * time.Second}
	for i := range want {
		if lat[i] != want[i] {
			t.Fatalf("latencies %v, want %v", lat, want)
		}
	}
	fo.saw(2, 0, c, t0, "s2")
	if !fo.complete() {
		t.Fatal("not complete after every delivery")
	}
}

func TestChangeSeq(t *testing.T) {
	for _, tc := range []struct {
		output string
		want   int
	}{{"seq=42", 42}, {"seq=0", 0}, {"", -1}, {"other", -1}} {
		nodes := []structs.CheckServiceNode{{Checks: []*structs.HealthCheck{{Output: tc.output}}}}
		if got := changeSeq(nodes); got != tc.want {
			t.Errorf("changeSeq(%q) = %d, want %d", tc.output, got, tc.want)
		}
	}
	if got := changeSeq(nil); got != -1 {
		t.Errorf("changeSeq(nil) = %d, want -1", got)
	}
}

func TestFleetOptionsValidate(t *testing.T) {
	ok := fleetOptions{Clients: 10, Services: 100, Hot: 20, Rate: 10, Churn: time.Second,
		WatchClients: 10, WatchChurn: time.Second, CatalogInstances: 1000, Phases: "fleet,watch"}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for name, mod := range map[string]func(*fleetOptions){
		"no clients":     func(f *fleetOptions) { f.Clients = 0 },
		"too many":       func(f *fleetOptions) { f.Clients = maxFleetClients + 1 },
		"hot > services": func(f *fleetOptions) { f.Hot = 101 },
		"zero rate":      func(f *fleetOptions) { f.Rate = 0 },
		"long churn":     func(f *fleetOptions) { f.Churn = time.Hour },
		"small catalog":  func(f *fleetOptions) { f.CatalogInstances = 10 },
		"bad phase":      func(f *fleetOptions) { f.Phases = "fleet,nope" },
	} {
		f := ok
		mod(&f)
		if err := f.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
