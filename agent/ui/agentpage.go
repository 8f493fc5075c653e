package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/cairnd/cairn/cluster/structs"
)

// ---- Cluster ----

type memberRow struct {
	Name, Addr, Status, Role, DC string
}

func memberRows(ms []member) []memberRow {
	out := make([]memberRow, 0, len(ms))
	for _, m := range ms {
		role := m.Tags["role"]
		if role == "consul" {
			role = "server"
		} else if role == "node" {
			role = "client"
		}
		out = append(out, memberRow{Name: m.Name, Addr: fmt.Sprintf("%s:%d", m.Addr, m.Port),
			Status: memberStatusName(m.Status), Role: role, DC: m.Tags["dc"]})
	}
	return out
}

func (h *Handler) clusterPage(v *view) error {
	v.Title = "Cluster"
	lan, err := v.members(false)
	if err != nil {
		return err
	}
	// A client agent has no WAN pool: the section then says so.
	wan, wanErr := v.members(true)
	var raft structs.RaftConfigurationResponse
	_, raftErr := v.get("/v1/operator/raft/configuration", nil, &raft)
	var leader string
	if _, err := v.get("/v1/status/leader", nil, &leader); err != nil && raftErr == nil {
		raftErr = err
	}
	slices.SortFunc(raft.Servers, func(a, b *structs.RaftServer) int { return strings.Compare(a.Node, b.Node) })
	v.Data = struct {
		LAN, WAN []memberRow
		WANError string
		Raft     []*structs.RaftServer
		RaftErr  string
		Leader   string
		DCs      []string
	}{memberRows(lan), memberRows(wan), errText(wanErr), raft.Servers, errText(raftErr), leader, v.DCs}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ---- This agent ----

// cacheFigures are the client cache's metrics the page shows, in order.
var cacheFigures = []struct{ Label, Metric string }{
	{"Hits", "cairn_cache_hits_total"},
	{"Misses", "cairn_cache_misses_total"},
	{"Coalesced misses", "cairn_cache_coalesced_total"},
	{"Stale answers", "cairn_cache_stale_hits_total"},
	{"Entries", "cairn_cache_entries"},
	{"Subscribed keys", "cairn_cache_watched_keys"},
}

type figure struct {
	Label, Metric, Value string
}

type resolveResult struct {
	Name, Type, Rcode, Server string
	Records                   []string
	Error                     string
}

func (h *Handler) agentPage(v *view) error {
	v.Title = "This agent"
	var self struct {
		Config map[string]any
	}
	// The agent's own view: no ?dc=.
	dc := v.DC
	v.DC = ""
	_, err := v.get("/v1/agent/self", nil, &self)
	if err != nil {
		v.DC = dc
		return err
	}
	var metrics struct {
		Gauges []struct {
			Name  string
			Value float64
		}
		Counters []struct {
			Name string
			Sum  float64
		}
	}
	_, merr := v.get("/v1/agent/metrics", nil, &metrics)
	v.DC = dc
	vals := map[string]float64{}
	for _, g := range metrics.Gauges {
		vals[g.Name] += g.Value
	}
	for _, c := range metrics.Counters {
		vals[c.Name] += c.Sum
	}
	var figs []figure
	hasCache := false
	for _, f := range cacheFigures {
		val := "—"
		if x, ok := vals[f.Metric]; ok {
			val = fmt.Sprintf("%.0f", x)
			hasCache = true
		}
		figs = append(figs, figure{f.Label, f.Metric, val})
	}
	q := v.req.URL.Query()
	var res *resolveResult
	if name := strings.TrimSpace(q.Get("name")); name != "" || q.Has("name") {
		res = h.resolve(v.req.Context(), name, q.Get("type"))
		if res.Error != "" && res.Rcode == "" {
			v.Status = http.StatusBadRequest
		}
	}
	node, _ := self.Config["NodeName"].(string)
	dcName, _ := self.Config["Datacenter"].(string)
	server, _ := self.Config["Server"].(bool)
	v.Data = struct {
		Node, Datacenter, DNSAddr, Domain string
		Server, HasCache                  bool
		Figures                           []figure
		MetricsErr                        string
		Resolve                           *resolveResult
		Types                             []string
		Example                           string
	}{node, dcName, h.cfg.DNSAddr, h.cfg.Domain, server, hasCache, figs, errText(merr), res,
		resolveTypes, "consul.service." + h.cfg.Domain}
	return nil
}

// resolveTypes are the query types the resolve box offers.
var resolveTypes = []string{"A", "AAAA", "SRV", "TXT", "ANY"}

// resolve asks the agent's DNS port, over the network like any stub
// resolver, and returns the answer records as zone-file text.
func (h *Handler) resolve(ctx context.Context, name, qtype string) *resolveResult {
	res := &resolveResult{Name: name, Type: qtype, Server: h.cfg.DNSAddr}
	t, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok || !slices.Contains(resolveTypes, strings.ToUpper(qtype)) {
		res.Error = fmt.Sprintf("type: %q is not one of %s", qtype, strings.Join(resolveTypes, ", "))
		return res
	}
	res.Type = strings.ToUpper(qtype)
	if name == "" {
		res.Error = "name: empty"
		return res
	}
	fq := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(fq); !ok {
		res.Error = fmt.Sprintf("name: %q is not a domain name", name)
		return res
	}
	if h.cfg.DNSAddr == "" {
		res.Error = "this agent's DNS port is off"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(fq, t)
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp"}
	r, _, err := c.ExchangeContext(ctx, m, h.cfg.DNSAddr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, h.cfg.DNSAddr)
	}
	if err != nil {
		res.Error = "query failed: " + err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = "query timed out"
		}
		res.Rcode = "no answer"
		return res
	}
	res.Rcode = dns.RcodeToString[r.Rcode]
	for _, sec := range [][]dns.RR{r.Answer, r.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			res.Records = append(res.Records, rr.String())
		}
	}
	return res
}
