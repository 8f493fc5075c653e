package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/tlsconf"
)

// The tls benchmark measures what TLS on the server port costs: the same
// two loads (stale reads over one multiplexed session, Raft catalog
// registrations at the leader) against a plain 3-server cluster and
// against one with verify_incoming, verify_outgoing and
// verify_server_hostname, in the same run. The target is a TLS
// cost of at most 10%.
func init() {
	register("tls", "plain vs TLS server port in one run: 256-stream stale reads and raft registrations", runTLS)
}

// tlsBenchPKI writes a CA, one server certificate (shared by the three
// servers) and a CLI certificate into dir, plus a config dir for the
// servers; it returns the config dir and the benchmark client's TLS.
func tlsBenchPKI(dir string) (string, *tls.Config, error) {
	caPEM, caKeyPEM, err := tlsconf.GenerateCA(tlsconf.CAOptions{})
	if err != nil {
		return "", nil, err
	}
	ca, caKey, err := tlsconf.ParseCA(caPEM, caKeyPEM)
	if err != nil {
		return "", nil, err
	}
	write := func(name string, b []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b, 0o600)
	}
	caFile, err := write("ca.pem", caPEM)
	if err != nil {
		return "", nil, err
	}
	files := map[tlsconf.Kind][2]string{}
	for _, k := range []tlsconf.Kind{tlsconf.KindServer, tlsconf.KindCLI} {
		c, key, err := tlsconf.GenerateCert(tlsconf.CertOptions{Kind: k, Datacenter: "dc1", Domain: "consul"}, ca, caKey)
		if err != nil {
			return "", nil, err
		}
		cf, err := write(string(k)+".pem", c)
		if err != nil {
			return "", nil, err
		}
		kf, err := write(string(k)+"-key.pem", key)
		if err != nil {
			return "", nil, err
		}
		files[k] = [2]string{cf, kf}
	}
	confDir := filepath.Join(dir, "conf")
	if err := os.Mkdir(confDir, 0o700); err != nil {
		return "", nil, err
	}
	b, _ := json.Marshal(map[string]any{"tls": map[string]any{
		"defaults": map[string]any{"ca_file": caFile, "cert_file": files[tlsconf.KindServer][0], "key_file": files[tlsconf.KindServer][1],
			"verify_incoming": true, "verify_outgoing": true},
		"internal_rpc": map[string]any{"verify_server_hostname": true},
	}})
	if _, err := write("conf/tls.json", b); err != nil {
		return "", nil, err
	}
	cli, err := tlsconf.New(tlsconf.Config{CAFile: caFile, CertFile: files[tlsconf.KindCLI][0], KeyFile: files[tlsconf.KindCLI][1],
		VerifyOutgoing: true, VerifyServerHostname: true, Datacenter: "dc1", Domain: "consul"})
	if err != nil {
		return "", nil, err
	}
	return confDir, cli.OutgoingTLS(""), nil
}

// tlsFlags: --tls-rounds alternations of plain and TLS per load.
var tlsFlags struct{ rounds int }

func init() {
	flag.IntVar(&tlsFlags.rounds, "tls-rounds", 5, "tls: alternating plain/TLS rounds per load, each --duration/rounds long; the lines print the medians (1..9)")
}

// tlsBench is one of the two clusters with its benchmark sessions.
type tlsBench struct {
	mode     string
	c        *cluster
	leader   *agentProc
	reads    *rpc.Session   // to agents[0]
	writers  []*rpc.Session // to the leader, writersPerSession writers each
	readArgs *structs.ServiceSpecificRequest
}

// runTLS starts the plain and the TLS cluster side by side, then measures
// each load in --tls-rounds short rounds that alternate between the two
// (plain, TLS, plain, TLS, ...) and prints the median per mode. One run
// after the other let the machine's drift between the two halves (±30%
// on this shared 2-core machine, in either direction) swamp a 10% cost;
// alternating exposes both modes to the same drift.
func runTLS(ctx context.Context, o *Options) error {
	if tlsFlags.rounds < 1 || tlsFlags.rounds > 9 {
		return fmt.Errorf("--tls-rounds must be in [1, 9]")
	}
	dir, err := os.MkdirTemp("", "cairnbench-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	confDir, clientTLS, err := tlsBenchPKI(dir)
	if err != nil {
		return err
	}
	plain, err := startTLSBench(ctx, o, "plain", nil, nil)
	if err != nil {
		return fmt.Errorf("plain: %w", err)
	}
	defer plain.close()
	withTLS, err := startTLSBench(ctx, o, "tls", []string{"--config-dir", confDir}, clientTLS)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer withTLS.close()

	round := o.Duration / time.Duration(tlsFlags.rounds)
	rounds := func(load string, run func(*tlsBench) (float64, error)) (tlsRate, plainRate float64, err error) {
		var rp, rt []float64
		for i := range tlsFlags.rounds {
			for _, b := range []*tlsBench{plain, withTLS} {
				name := fmt.Sprintf("tls_%s_%s_round%d", load, b.mode, i+1)
				logf("tls bench (%s): %s round %d of %d, %v", b.mode, load, i+1, tlsFlags.rounds, round)
				wait := b.profile(ctx, o, round, name, load == "registers")
				r, err := run(b)
				wait()
				if err != nil {
					return 0, 0, err
				}
				if b == plain {
					rp = append(rp, r)
				} else {
					rt = append(rt, r)
				}
			}
		}
		logf("tls bench: %s per round: plain %.0f, tls %.0f", load, rp, rt)
		return median(rt), median(rp), nil
	}
	tr, pr, err := rounds("reads", func(b *tlsBench) (float64, error) { return b.runReads(ctx, round) })
	if err != nil {
		return err
	}
	tw, pw, err := rounds("registers", func(b *tlsBench) (float64, error) { return b.runRegisters(ctx, o.Writers, round) })
	if err != nil {
		return err
	}
	result("rpc_reads_per_s_tls=%.0f plain=%.0f cost_pct=%.1f rounds=%d", tr, pr, (1-tr/pr)*100, tlsFlags.rounds)
	result("raft_register_ops_per_s_tls=%.0f plain=%.0f cost_pct=%.1f rounds=%d", tw, pw, (1-tw/pw)*100, tlsFlags.rounds)
	return nil
}

// startTLSBench starts a 3-server cluster (extra: its agent flags), loads
// the read set and dials the benchmark's sessions (clientTLS: nil = plain).
func startTLSBench(ctx context.Context, o *Options, mode string, extra []string, clientTLS *tls.Config) (*tlsBench, error) {
	c, err := startServers(ctx, o.Bin, 3, o.ProfileDir != "", o.KeepLogs, extra...)
	if err != nil {
		return nil, err
	}
	b := &tlsBench{mode: mode, c: c}
	fail := func(err error) (*tlsBench, error) {
		b.close()
		return nil, err
	}
	if b.leader, err = c.leader(ctx); err != nil {
		return fail(err)
	}
	for i := range rpcBenchInstances {
		body := fmt.Sprintf(`{"Node":"bench-node-%d","Address":"10.0.0.%d","Service":{"Service":%q,"Port":%d}}`, i, i+1, rpcBenchService, 8080+i)
		if err := rpcBenchPut(ctx, "http://"+c.agents[0].httpAddr()+"/v1/catalog/register", body); err != nil {
			return fail(err)
		}
	}
	dial := func(addr string) (*rpc.Session, error) {
		return rpc.Dial(ctx, addr, rpc.DialOptions{TLS: clientTLS})
	}
	if b.reads, err = dial(c.agents[0].rpcAddr()); err != nil {
		return fail(err)
	}
	for range (o.Writers + writersPerSession - 1) / writersPerSession {
		s, err := dial(b.leader.rpcAddr())
		if err != nil {
			return fail(err)
		}
		b.writers = append(b.writers, s)
	}
	b.readArgs = &structs.ServiceSpecificRequest{Datacenter: "dc1", ServiceName: rpcBenchService, QueryOptions: structs.QueryOptions{AllowStale: true}}
	deadline := time.Now().Add(30 * time.Second)
	for b.read(ctx) != nil {
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("warm-up: %w", b.read(ctx)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b, nil
}

func (b *tlsBench) close() {
	if b.reads != nil {
		b.reads.Close()
	}
	for _, s := range b.writers {
		s.Close()
	}
	b.c.Close()
}

// profile, with --profile-dir, profiles agents[0] during a read round or
// every server during a registration round (the leader's file says so).
func (b *tlsBench) profile(ctx context.Context, o *Options, d time.Duration, name string, all bool) (wait func()) {
	if !all {
		return profilePhase(ctx, o.ProfileDir, b.c.agents[0], d, name)
	}
	var waits []func()
	for i, a := range b.c.agents {
		n := fmt.Sprintf("%s_s%d", name, i+1)
		if a == b.leader {
			n += "_leader"
		}
		waits = append(waits, profilePhase(ctx, o.ProfileDir, a, d, n))
	}
	return func() {
		for _, w := range waits {
			w()
		}
	}
}

func (b *tlsBench) read(ctx context.Context) error {
	var out structs.IndexedCheckServiceNodes
	if err := b.reads.Call(ctx, structs.MethodHealthServiceNodes, b.readArgs, &out); err != nil {
		return err
	}
	if len(out.Nodes) != rpcBenchInstances {
		return fmt.Errorf("got %d instances, want %d", len(out.Nodes), rpcBenchInstances)
	}
	return nil
}

// runReads is one round of rpcStreams concurrent stale reads.
func (b *tlsBench) runReads(ctx context.Context, d time.Duration) (float64, error) {
	p := runLoad(ctx, rpcStreams, d, func(ctx context.Context, _, _ int) error { return b.read(ctx) })
	if err := p.check(b.mode + " reads"); err != nil {
		return 0, err
	}
	return p.opsPerSec(), nil
}

// runRegisters is one round of catalog registrations at the leader.
func (b *tlsBench) runRegisters(ctx context.Context, writers int, d time.Duration) (float64, error) {
	p := runLoad(ctx, writers, d, func(ctx context.Context, w, i int) error {
		req := &structs.RegisterRequest{
			Datacenter: "dc1",
			Node:       fmt.Sprintf("bench-%d", w),
			Address:    fmt.Sprintf("10.%d.%d.%d", w>>16&255, w>>8&255, w&255),
			Service:    &structs.NodeService{ID: fmt.Sprintf("svc-%d", i%64), Service: "bench", Port: 1024 + i%64},
		}
		return b.writers[w/writersPerSession].Call(ctx, structs.MethodCatalogRegister, req, &structs.WriteResponse{})
	})
	if err := p.check(b.mode + " raft register"); err != nil {
		return 0, err
	}
	return p.opsPerSec(), nil
}
