package agent_test

import (
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

const aclDenyConfig = `{"acl": {"enabled": true, "default_policy": "deny", "down_policy": "extend-cache", "token_ttl": "1s"}}`

// appRules is the policy of TestACLE2E's application token: write under
// app/, read the web service and every node.
const appRules = `
key_prefix "app/" { policy = "write" }
service "web" { policy = "read" }
node_prefix "" { policy = "read" }
`

func aclClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Scheme: "http", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawRequest sends one HTTP request with an optional X-Consul-Token and
// returns status, body and headers.
func rawRequest(t *testing.T, method, url, token, body string) (int, string, nethttp.Header) {
	t.Helper()
	req, err := nethttp.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func isStatus(err error, code int) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code
}

// TestACLE2E runs one server and one client agent with
// default_policy = "deny" and drives them with the official client and
// raw HTTP: bootstrap once, policies and tokens, KV and catalog
// enforcement and filtering on both agents, DNS through the anonymous
// token's policy.
func TestACLE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real agent processes")
	}
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	srv := startAgent(t, bin, "s1", "--server", "--bootstrap-expect", "1",
		"--config-dir", gossipConfigDir(t, map[string]string{"acl.json": aclDenyConfig}))
	anon := aclClient(t, srv.HTTPAddr(), "")
	testutil.Eventually(t, 30*time.Second, "leader", func() error {
		l, err := anon.Status().Leader()
		if err == nil && l == "" {
			err = fmt.Errorf("no leader yet")
		}
		return err
	})

	// Bootstrap with the official client; the second one is refused.
	var mgmt *api.ACLToken
	testutil.Eventually(t, 20*time.Second, "bootstrap", func() error {
		var err error
		mgmt, _, err = anon.ACL().Bootstrap()
		return err
	})
	if _, _, err := anon.ACL().Bootstrap(); !isStatus(err, 403) {
		t.Fatalf("second bootstrap: %v, want 403", err)
	}
	root := aclClient(t, srv.HTTPAddr(), mgmt.SecretID)

	// Anonymous writes are refused with Consul's body and change nothing.
	url := "http://" + srv.HTTPAddr()
	code, body, _ := rawRequest(t, "PUT", url+"/v1/kv/x", "", "v")
	if code != 403 || !strings.HasPrefix(body, "Permission denied") {
		t.Fatalf("anonymous PUT /v1/kv/x = %d %q, want 403 Permission denied", code, body)
	}
	if kv, _, err := root.KV().Get("x", nil); err != nil || kv != nil {
		t.Fatalf("x after refused write: %v %v", kv, err)
	}

	pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "app", Rules: appRules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Description: "app token", Policies: []*api.ACLTokenPolicyLink{{Name: "app"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Policies) != 1 || tok.Policies[0].ID != pol.ID {
		t.Fatalf("token policies %+v, want the app policy %s", tok.Policies, pol.ID)
	}
	for _, svc := range []string{"web", "db"} {
		if _, err := root.Catalog().Register(&api.CatalogRegistration{Node: "n1", Address: "10.0.0.1",
			Service: &api.AgentService{ID: svc, Service: svc, Port: 80}}, nil); err != nil {
			t.Fatal(err)
		}
	}

	// DNS may read web and the nodes, not db. The server answers DNS
	// with the anonymous token (it has no tokens.default), the client
	// with its tokens.default.
	dnsPol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "dns", Rules: `service "web" { policy = "read" } node_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.ACL().TokenUpdate(&api.ACLToken{AccessorID: "00000000-0000-0000-0000-000000000002",
		Policies: []*api.ACLTokenPolicyLink{{ID: dnsPol.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
	// The client's default token also reads db, so its DNS answers show
	// which token it used.
	if _, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "dns-db", Rules: `service "db" { policy = "read" }`}, nil); err != nil {
		t.Fatal(err)
	}
	dnsTok, _, err := root.ACL().TokenCreate(&api.ACLToken{Description: "dns", Policies: []*api.ACLTokenPolicyLink{{ID: dnsPol.ID}, {Name: "dns-db"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A client agent, whose own calls use the management token as its
	// agent token; requests through it carry the caller's token.
	cliDir := gossipConfigDir(t, map[string]string{"acl.json": fmt.Sprintf(
		`{"acl": {"enabled": true, "default_policy": "deny", "token_ttl": "1s", "tokens": {"agent": %q, "default": %q}}}`, mgmt.SecretID, dnsTok.SecretID)})
	cli := startAgent(t, bin, "c1", "--retry-join", srv.SerfAddr(), "--config-dir", cliDir)

	for _, ag := range []*agenttest.Proc{srv, cli} {
		t.Run(ag.Name, func(t *testing.T) {
			app := aclClient(t, ag.HTTPAddr(), tok.SecretID)
			url := "http://" + ag.HTTPAddr()
			testutil.Eventually(t, 30*time.Second, "app token writes app/", func() error {
				_, err := app.KV().Put(&api.KVPair{Key: "app/" + ag.Name, Value: []byte("1")}, nil)
				return err
			})
			if _, err := app.KV().Put(&api.KVPair{Key: "other/" + ag.Name, Value: []byte("1")}, nil); !isStatus(err, 403) {
				t.Fatalf("app token PUT other/: %v, want 403", err)
			}
			if kv, _, err := root.KV().Get("other/"+ag.Name, nil); err != nil || kv != nil {
				t.Fatalf("other/ after refused write: %v %v", kv, err)
			}
			// Lists are filtered, and say so.
			if _, err := root.KV().Put(&api.KVPair{Key: "secret/k", Value: []byte("s")}, nil); err != nil {
				t.Fatal(err)
			}
			code, body, h := rawRequest(t, "GET", url+"/v1/kv/?keys", tok.SecretID, "")
			if code != 200 || strings.Contains(body, "secret/k") || !strings.Contains(body, "app/") || h.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
				t.Fatalf("keys as app token: %d %s filtered=%q", code, body, h.Get("X-Consul-Results-Filtered-By-ACLs"))
			}
			svcs, _, err := app.Catalog().Services(nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := svcs["web"]; !ok || len(svcs) != 1 {
				t.Fatalf("catalog services as app token: %v, want only web", svcs)
			}
			_, _, h = rawRequest(t, "GET", url+"/v1/catalog/services", tok.SecretID, "")
			if h.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
				t.Error("catalog services: no X-Consul-Results-Filtered-By-ACLs")
			}
			for svc, want := range map[string]int{"web": 1, "db": 0} {
				entries, _, err := app.Health().Service(svc, "", false, nil)
				if err != nil || len(entries) != want {
					t.Fatalf("health service %s as app token: %d entries, %v; want %d", svc, len(entries), err, want)
				}
			}
			// The management token sees everything.
			all, _, err := root.Catalog().Services(nil)
			if err != nil || len(all) < 2 {
				t.Fatalf("catalog services as management: %v %v", all, err)
			}
			// DNS: web resolves; db is NXDOMAIN on the server (anonymous
			// cannot read it) and resolves on the client (tokens.default).
			wantDB := dns.RcodeNameError
			if ag == cli {
				wantDB = dns.RcodeSuccess
			}
			testutil.Eventually(t, 20*time.Second, "dns", func() error {
				r, err := dnsQuery(ag.DNSAddr(), "web.service.consul", dns.TypeA)
				if err != nil {
					return err
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					return fmt.Errorf("web: rcode %d, %d answers", r.Rcode, len(r.Answer))
				}
				if r, err = dnsQuery(ag.DNSAddr(), "db.service.consul", dns.TypeA); err != nil {
					return err
				}
				if r.Rcode != wantDB {
					return fmt.Errorf("db: rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[wantDB])
				}
				return nil
			})
			// Agent endpoints need agent read; the app token has none.
			if code, _, _ := rawRequest(t, "GET", url+"/v1/agent/self", tok.SecretID, ""); code != 403 {
				t.Errorf("agent/self as app token: %d, want 403", code)
			}
			code, self, _ := rawRequest(t, "GET", url+"/v1/agent/self", mgmt.SecretID, "")
			if code != 200 || strings.Contains(self, mgmt.SecretID) || strings.Contains(self, dnsTok.SecretID) {
				t.Errorf("agent/self as management: %d, or a configured secret in it:\n%s", code, self)
			}
			// Token self and an unknown token.
			me, _, err := app.ACL().TokenReadSelf(nil)
			if err != nil || me.AccessorID != tok.AccessorID {
				t.Fatalf("token self: %+v %v", me, err)
			}
			if code, _, _ := rawRequest(t, "GET", url+"/v1/kv/app/x", "no-such-token", ""); code != 403 {
				t.Errorf("unknown token: %d, want 403", code)
			}
		})
	}

	// A client agent whose tokens.default reads web but only node n1: web's
	// instances on other nodes are filtered out of its answers, and every
	// change must reach it only through reads that token may make. Once a
	// visible change (a second web instance on n1) has reached its DNS, an
	// invisible one (web on n2, registered first) must not have: a server
	// pushing subscriptions unfiltered leaked it; with ACLs on, servers
	// serve no subscriptions.
	n1Pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "web-n1", Rules: `service "web" { policy = "read" } node "n1" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n1Tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Description: "web on n1", Policies: []*api.ACLTokenPolicyLink{{ID: n1Pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2 := startAgent(t, bin, "c2", "--retry-join", srv.SerfAddr(), "--config-dir", gossipConfigDir(t, map[string]string{"acl.json": fmt.Sprintf(
		`{"acl": {"enabled": true, "default_policy": "deny", "token_ttl": "1s", "tokens": {"agent": %q, "default": %q}}}`, mgmt.SecretID, n1Tok.SecretID)}))
	webAddrs := func() ([]string, error) {
		r, err := dnsQuery(c2.DNSAddr(), "web.service.consul", dns.TypeA)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				out = append(out, a.A.String())
			}
		}
		slices.Sort(out)
		return out, nil
	}
	testutil.Eventually(t, 20*time.Second, "c2: web on n1", func() error {
		if got, err := webAddrs(); err != nil || !slices.Equal(got, []string{"10.0.0.1"}) {
			return fmt.Errorf("web: %v, %v", got, err)
		}
		return nil
	})
	for _, reg := range []*api.CatalogRegistration{
		{Node: "n2", Address: "10.0.0.2", Service: &api.AgentService{ID: "web", Service: "web", Port: 80}},
		{Node: "n1", Address: "10.0.0.1", Service: &api.AgentService{ID: "web2", Service: "web", Address: "10.0.0.9", Port: 80}},
	} {
		if _, err := root.Catalog().Register(reg, nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "c2: web's second instance on n1, never the one on n2", func() error {
		got, err := webAddrs()
		if err != nil {
			return err
		}
		if slices.Contains(got, "10.0.0.2") {
			t.Fatalf("c2 answered web on n2, which its token may not read: %v", got)
		}
		if !slices.Equal(got, []string{"10.0.0.1", "10.0.0.9"}) {
			return fmt.Errorf("web: %v", got)
		}
		return nil
	})

	// Lists and deletes through the official client.
	toks, _, err := root.ACL().TokenList(nil)
	if err != nil || !slices.ContainsFunc(toks, func(e *api.ACLTokenListEntry) bool { return e.AccessorID == tok.AccessorID }) {
		t.Fatalf("token list: %v", err)
	}
	if _, err := root.ACL().TokenDelete(tok.AccessorID, nil); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "deleted token refused", func() error {
		if _, err := aclClient(t, srv.HTTPAddr(), tok.SecretID).KV().Put(&api.KVPair{Key: "app/z"}, nil); !isStatus(err, 403) {
			return fmt.Errorf("deleted token: %v", err)
		}
		return nil
	})
	if secretLeak := strings.Contains(srv.Log(), tok.SecretID) || strings.Contains(cli.Log(), tok.SecretID) ||
		strings.Contains(srv.Log(), mgmt.SecretID); secretLeak {
		t.Error("a token secret appears in an agent log")
	}
}

// TestACLSurvivesLeaderKillAndRestore: three servers with
// initial_management; a policy and token made through the API survive a
// kill -9 of the leader and a snapshot restore (after being deleted).
func TestACLSurvivesLeaderKillAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real agent processes")
	}
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	const rootSecret = "3f1d7a52-0c4e-4b8e-9a61-7d2f5e8c1b90"
	cfg := fmt.Sprintf(`{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": %q, "agent": %q}}}`, rootSecret, rootSecret)
	var procs []*agenttest.Proc
	join := ""
	for i := 1; i <= 3; i++ {
		args := []string{"--server", "--bootstrap-expect", "3", "--config-dir", gossipConfigDir(t, map[string]string{"acl.json": cfg})}
		if join != "" {
			args = append(args, "--retry-join", join)
		}
		p := startAgent(t, bin, fmt.Sprintf("s%d", i), args...)
		if join == "" {
			join = p.SerfAddr()
		}
		procs = append(procs, p)
	}
	root := aclClient(t, procs[0].HTTPAddr(), rootSecret)
	testutil.Eventually(t, 60*time.Second, "initial management token works", func() error {
		_, err := root.KV().Put(&api.KVPair{Key: "boot", Value: []byte("1")}, nil)
		return err
	})
	// initial_management bootstrapped ACLs: the API bootstrap is refused.
	if _, _, err := aclClient(t, procs[0].HTTPAddr(), "").ACL().Bootstrap(); !isStatus(err, 403) {
		t.Fatalf("bootstrap after initial_management: %v, want 403", err)
	}
	if _, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "app", Rules: `key_prefix "app/" { policy = "write" }`}, nil); err != nil {
		t.Fatal(err)
	}
	tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{Name: "app"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The server port decides too: a raw RPC without a token is refused.
	err = callOnce(procs[0].RPCAddr(), structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet,
		DirEnt: structs.DirEntry{Key: "app/raw", Value: []byte("x")}}, &structs.WriteResponse{}, 5*time.Second)
	if !errors.Is(err, structs.ErrPermissionDenied) {
		t.Fatalf("raw RPC KV write without token: %v, want permission denied", err)
	}

	// kill -9 the leader; the others elect a new one and still know the token.
	leader := leaderAddr(procs[0].RPCAddr())
	var survivors []*agenttest.Proc
	for _, p := range procs {
		if p.RPCAddr() == leader {
			p.Kill()
		} else {
			survivors = append(survivors, p)
		}
	}
	if len(survivors) != 2 {
		t.Fatalf("leader %q not among the servers", leader)
	}
	for _, p := range survivors {
		app := aclClient(t, p.HTTPAddr(), tok.SecretID)
		testutil.Eventually(t, 60*time.Second, "token works after leader kill on "+p.Name, func() error {
			_, err := app.KV().Put(&api.KVPair{Key: "app/" + p.Name, Value: []byte("1")}, nil)
			return err
		})
		if _, err := app.KV().Put(&api.KVPair{Key: "other", Value: []byte("1")}, nil); !isStatus(err, 403) {
			t.Fatalf("%s: app token outside app/: %v, want 403", p.Name, err)
		}
	}

	// Snapshot, delete the token and policy, restore: both are back.
	root = aclClient(t, survivors[0].HTTPAddr(), rootSecret)
	rc, _, err := root.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.ACL().TokenDelete(tok.AccessorID, nil); err != nil {
		t.Fatal(err)
	}
	app := aclClient(t, survivors[0].HTTPAddr(), tok.SecretID)
	if _, err := app.KV().Put(&api.KVPair{Key: "app/deleted"}, nil); !isStatus(err, 403) {
		t.Fatalf("deleted token: %v, want 403", err)
	}
	if err := root.Snapshot().Restore(nil, strings.NewReader(string(snap))); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "token back after restore", func() error {
		_, err := app.KV().Put(&api.KVPair{Key: "app/restored", Value: []byte("1")}, nil)
		return err
	})
	pols, _, err := root.ACL().PolicyList(nil)
	if err != nil || !slices.ContainsFunc(pols, func(p *api.ACLPolicyListEntry) bool { return p.Name == "app" }) {
		t.Fatalf("policies after restore: %v", err)
	}
	// Snapshots need operator permission.
	if _, _, err := app.Snapshot().Save(nil); !isStatus(err, 403) {
		t.Fatalf("snapshot save with the app token: %v, want 403", err)
	}
}

// TestACLClientDownPolicy: a client agent (down_policy extend-cache,
// token_ttl 1s) keeps serving its own endpoints to a token it resolved
// before every server died, and refuses a token it never saw.
func TestACLClientDownPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real agent processes")
	}
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	const rootSecret = "5b0c2f0e-8d7e-4c1a-9a4e-2f6d1c3b7a10"
	cfg := fmt.Sprintf(`{"acl": {"enabled": true, "default_policy": "deny", "down_policy": "extend-cache", "token_ttl": "1s",
		"tokens": {"initial_management": %q, "agent": %q}}}`, rootSecret, rootSecret)
	srv := startAgent(t, bin, "s1", "--server", "--bootstrap-expect", "1", "--config-dir", gossipConfigDir(t, map[string]string{"acl.json": cfg}))
	root := aclClient(t, srv.HTTPAddr(), rootSecret)
	testutil.Eventually(t, 30*time.Second, "initial management token works", func() error {
		_, err := root.KV().Put(&api.KVPair{Key: "boot"}, nil)
		return err
	})
	if _, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "ops", Rules: `agent_prefix "" { policy = "read" }`}, nil); err != nil {
		t.Fatal(err)
	}
	tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{Name: "ops"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{Name: "ops"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli := startAgent(t, bin, "c1", "--retry-join", srv.SerfAddr(), "--config-dir", gossipConfigDir(t, map[string]string{"acl.json": cfg}))
	url := "http://" + cli.HTTPAddr() + "/v1/agent/self"
	testutil.Eventually(t, 30*time.Second, "client resolves the ops token", func() error {
		if code, body, _ := rawRequest(t, "GET", url, tok.SecretID, ""); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	if code, _, _ := rawRequest(t, "GET", url, "", ""); code != 403 {
		t.Fatalf("anonymous agent/self: %d, want 403", code)
	}
	srv.Kill()
	// Past token_ttl the entry is expired; with no server the client
	// extends it, and denies a token it never resolved.
	testutil.Eventually(t, 30*time.Second, "client applies down_policy", func() error {
		if code, _, _ := rawRequest(t, "GET", url, other.SecretID, ""); code != 403 {
			return fmt.Errorf("never-seen token with servers down: %d, want 403", code)
		}
		if !strings.Contains(cli.Log(), "applying down_policy") {
			return fmt.Errorf("no down_policy log yet")
		}
		return nil
	})
	if code, body, _ := rawRequest(t, "GET", url, tok.SecretID, ""); code != 200 {
		t.Fatalf("cached token with servers down (extend-cache): %d %s, want 200", code, body)
	}
}
