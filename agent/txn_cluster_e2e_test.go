package agent_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestTxnClusterE2E: on 3 server agents and a client agent (real
// processes), a 10-op transaction sent through the client applies
// atomically on every replica, and one with a failing check-index, sent to
// each server in turn (followers forward it), changes no replica.
func TestTxnClusterE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four agent processes")
	}
	bin := agenttest.Binary(t)
	servers, join := startServerAgents(t, bin, "ts", 3)
	client := startAgent(t, bin, "tc1", "--retry-join", join)
	apiOf := func(p *agenttest.Proc) *api.Client {
		c, err := api.NewClient(&api.Config{Address: p.HTTPAddr(), Scheme: "http"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cc := apiOf(client)
	var ops api.TxnOps
	for i := range 10 {
		ops = append(ops, setOp("cl/k"+strconv.Itoa(i), "v"+strconv.Itoa(i)))
	}
	testutil.Eventually(t, 60*time.Second, "a txn through the client agent", func() error {
		ok, resp, _, err := cc.Txn().Txn(ops, nil)
		if err != nil {
			return err
		}
		if !ok || len(resp.Results) != 10 {
			return fmt.Errorf("ok=%v resp=%+v", ok, resp)
		}
		return nil
	})
	// Every replica holds all ten (stale reads: each server's own state).
	replicas := func(want string) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, "every replica agrees", func() error {
			for _, s := range servers {
				pairs, _, err := apiOf(s).KV().List("cl/", &api.QueryOptions{AllowStale: true})
				if err != nil {
					return err
				}
				got := ""
				for _, p := range pairs {
					got += fmt.Sprintf("%s=%s@%d ", p.Key, p.Value, p.ModifyIndex)
				}
				if got != want {
					return fmt.Errorf("%s holds %q, want %q", s.Name, got, want)
				}
			}
			return nil
		})
	}
	pairs, _, err := cc.KV().List("cl/", nil)
	if err != nil || len(pairs) != 10 {
		t.Fatalf("client list: %d pairs, %v", len(pairs), err)
	}
	want := ""
	for _, p := range pairs {
		want += fmt.Sprintf("%s=%s@%d ", p.Key, p.Value, p.ModifyIndex)
	}
	replicas(want)
	for i, s := range servers {
		bad := api.TxnOps{}
		for j := range 10 {
			if j == 7 {
				// cl/k7 is the one key this txn does not set: a check of a
				// key set earlier in the txn would see the txn's own index.
				bad = append(bad, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: "cl/k7", Index: pairs[7].ModifyIndex + 1}})
				continue
			}
			bad = append(bad, setOp("cl/k"+strconv.Itoa(j), "changed"))
		}
		ok, resp, _, err := apiOf(s).Txn().Txn(bad, nil)
		if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 7 {
			t.Fatalf("server %d: failing txn: ok=%v err=%v resp=%+v", i, ok, err, resp)
		}
	}
	replicas(want)
}
