package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
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

type tlsBenchResult struct{ reads, registers float64 }

func runTLS(ctx context.Context, o *Options) error {
	dir, err := os.MkdirTemp("", "cairnbench-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	confDir, clientTLS, err := tlsBenchPKI(dir)
	if err != nil {
		return err
	}
	plain, err := tlsBenchOne(ctx, o, nil, nil)
	if err != nil {
		return fmt.Errorf("plain: %w", err)
	}
	withTLS, err := tlsBenchOne(ctx, o, []string{"--config-dir", confDir}, clientTLS)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	result("rpc_reads_per_s_tls=%.0f plain=%.0f", withTLS.reads, plain.reads)
	result("raft_register_ops_per_s_tls=%.0f plain=%.0f", withTLS.registers, plain.registers)
	return nil
}

func tlsBenchOne(ctx context.Context, o *Options, extra []string, clientTLS *tls.Config) (tlsBenchResult, error) {
	mode := "plain"
	if clientTLS != nil {
		mode = "tls"
	}
	var r tlsBenchResult
	c, err := startServers(ctx, o.Bin, 3, false, o.KeepLogs, extra...)
	if err != nil {
		return r, err
	}
	defer c.Close()
	leader, err := c.leader(ctx)
	if err != nil {
		return r, err
	}
	for i := range rpcBenchInstances {
		body := fmt.Sprintf(`{"Node":"bench-node-%d","Address":"10.0.0.%d","Service":{"Service":%q,"Port":%d}}`, i, i+1, rpcBenchService, 8080+i)
		if err := rpcBenchPut(ctx, "http://"+c.agents[0].httpAddr()+"/v1/catalog/register", body); err != nil {
			return r, err
		}
	}
	dial := func(addr string) (*rpc.Session, error) {
		return rpc.Dial(ctx, addr, rpc.DialOptions{TLS: clientTLS})
	}

	// Reads: one session to a server, 256 concurrent stale reads.
	rs, err := dial(c.agents[0].rpcAddr())
	if err != nil {
		return r, err
	}
	defer rs.Close()
	args := &structs.ServiceSpecificRequest{Datacenter: "dc1", ServiceName: rpcBenchService, QueryOptions: structs.QueryOptions{AllowStale: true}}
	read := func(ctx context.Context, _, _ int) error {
		var out structs.IndexedCheckServiceNodes
		if err := rs.Call(ctx, structs.MethodHealthServiceNodes, args, &out); err != nil {
			return err
		}
		if len(out.Nodes) != rpcBenchInstances {
			return fmt.Errorf("got %d instances, want %d", len(out.Nodes), rpcBenchInstances)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for read(ctx, 0, 0) != nil {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("warm-up: %w", read(ctx, 0, 0))
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("tls bench (%s): reads, %d streams for %v", mode, rpcStreams, o.Duration)
	p := runLoad(ctx, rpcStreams, o.Duration, read)
	if err := p.check(mode + " reads"); err != nil {
		return r, err
	}
	r.reads = p.opsPerSec()

	// Registrations at the leader, writersPerSession writers per session.
	nsess := (o.Writers + writersPerSession - 1) / writersPerSession
	sessions := make([]*rpc.Session, 0, nsess)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for range nsess {
		s, err := dial(leader.rpcAddr())
		if err != nil {
			return r, err
		}
		sessions = append(sessions, s)
	}
	logf("tls bench (%s): raft registrations, %d writers for %v", mode, o.Writers, o.Duration)
	p = runLoad(ctx, o.Writers, o.Duration, func(ctx context.Context, w, i int) error {
		req := &structs.RegisterRequest{
			Datacenter: "dc1",
			Node:       fmt.Sprintf("bench-%d", w),
			Address:    fmt.Sprintf("10.%d.%d.%d", w>>16&255, w>>8&255, w&255),
			Service:    &structs.NodeService{ID: fmt.Sprintf("svc-%d", i%64), Service: "bench", Port: 1024 + i%64},
		}
		return sessions[w/writersPerSession].Call(ctx, structs.MethodCatalogRegister, req, &structs.WriteResponse{})
	})
	if err := p.check(mode + " raft register"); err != nil {
		return r, err
	}
	r.registers = p.opsPerSec()
	return r, nil
}
