package state

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

type blockResult struct {
	idx uint64
	err error
}

// blockOn starts a Block on the KV table at minIndex and returns its result
// channel.
func blockOn(ctx context.Context, s *Store, minIndex uint64, wait time.Duration, tables ...Table) <-chan blockResult {
	out := make(chan blockResult, 1)
	go func() {
		idx, err := s.Block(ctx, minIndex, wait, tables, func() (uint64, error) {
			idx, _ := s.KVSList("")
			return idx, nil
		})
		out <- blockResult{idx, err}
	}()
	return out
}

func TestBlockReturnsAtOnceWhenIndexIsNewer(t *testing.T) {
	s := New()
	_ = s.KVSSet(5, &structs.DirEntry{Key: "a"})
	select {
	case r := <-blockOn(context.Background(), s, 4, time.Minute, TableKVS):
		if r.idx != 5 || r.err != nil {
			t.Fatalf("got %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Block waited although the index was already past minIndex")
	}
}

// The Block tests that wait for a query to park run in a synctest bubble:
// synctest.Wait returns once Block sits on its watch channel, so neither
// "parked" nor "did not wake" is a guess about the scheduler.
func TestBlockWakesOnRelevantChange(t *testing.T) {
	synctest.Test(t, testBlockWakesOnRelevantChange)
}

func testBlockWakesOnRelevantChange(t *testing.T) {
	s := New()
	_ = s.KVSSet(5, &structs.DirEntry{Key: "a"})
	res := blockOn(context.Background(), s, 5, time.Minute, TableKVS)
	// A write to another table must not end the block.
	synctest.Wait()
	mustRegister(t, s, 6, &structs.RegisterRequest{Node: "n", Address: "1"})
	synctest.Wait()
	select {
	case r := <-res:
		t.Fatalf("woke on an unrelated table: %+v", r)
	default:
	}
	_ = s.KVSDelete(7, "a")
	select {
	case r := <-res:
		if r.idx != 7 || r.err != nil {
			t.Fatalf("got %+v, want index 7", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Block did not wake on a KV delete")
	}
}

func TestBlockTimesOut(t *testing.T) {
	s := New()
	_ = s.KVSSet(5, &structs.DirEntry{Key: "a"})
	start := time.Now()
	r := <-blockOn(context.Background(), s, 5, 50*time.Millisecond, TableKVS)
	if r.idx != 5 || r.err != nil {
		t.Fatalf("got %+v", r)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("returned after %v, before maxWait", el)
	}
}

func TestBlockContextAndAbandon(t *testing.T) {
	synctest.Test(t, testBlockContextAndAbandon)
}

func testBlockContextAndAbandon(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	res := blockOn(ctx, s, 10, time.Minute, TableKVS)
	cancel()
	if r := <-res; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancel: %+v", r)
	}

	res = blockOn(context.Background(), s, 10, time.Minute, TableNodes, TableKVS)
	synctest.Wait() // parked, so Abandon wakes it rather than pre-empting it
	s.Abandon()
	s.Abandon() // idempotent
	select {
	case r := <-res:
		if r.err != nil || r.idx != 1 {
			t.Fatalf("abandon: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Abandon did not wake the blocked query")
	}
	select {
	case <-s.AbandonCh():
	default:
		t.Fatal("AbandonCh not closed")
	}
}

func TestWatchSetsAreIndependent(t *testing.T) {
	s := New()
	nodes := s.Watch(TableNodes)
	kv := s.Watch(TableKVS)
	both := s.Watch(TableNodes, TableKVS)
	_ = s.KVSSet(1, &structs.DirEntry{Key: "a"})
	for name, ch := range map[string]<-chan struct{}{"kv": kv, "both": both} {
		select {
		case <-ch:
		default:
			t.Errorf("%s watch not fired", name)
		}
	}
	select {
	case <-nodes:
		t.Error("nodes watch fired on a KV write")
	default:
	}
	if s.Watch(TableKVS) == kv {
		t.Error("a fired watch channel was handed out again")
	}
}
