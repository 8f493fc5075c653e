package ui

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cairnd/cairn/cluster/structs"
)

// view is what every page template receives.
type view struct {
	h   *Handler
	req *http.Request

	Page   string // template name, marks the current nav entry
	Title  string
	DC     string   // ?dc= as given ("" is the agent's own)
	DCs    []string // for the switcher; empty when the list failed
	Error  string
	Status int // HTTP status when not 200
	// Watch is the API path (with query) the page's data follows; the
	// JS blocking-queries it from Index and refreshes main on change.
	Watch string
	Index uint64
	Data  any
}

func (h *Handler) newView(r *http.Request) *view {
	v := &view{h: h, req: r, DC: r.URL.Query().Get("dc")}
	if !validDC(v.DC) {
		v.DC = "" // ServeHTTP refused it; an error page renders without it
	}
	var dcs []string
	if _, err := v.get("/v1/catalog/datacenters", nil, &dcs); err == nil {
		v.DCs = dcs
	}
	return v
}

// validDC accepts the datacenter names Consul accepts (letters, digits,
// '-', '_', '.'), so a ?dc= never smuggles other query parameters.
func validDC(dc string) bool {
	if len(dc) > 64 {
		return false
	}
	for _, c := range dc {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// watch sets the blocking query the JS follows.
func (v *view) watch(path string, q url.Values, idx uint64) {
	q = cloneValues(q)
	if v.DC != "" {
		q.Set("dc", v.DC)
	}
	v.Watch = path
	if len(q) > 0 {
		v.Watch += "?" + q.Encode()
	}
	v.Index = idx
}

var funcs = template.FuncMap{
	// link is a UI path with the current ?dc= kept.
	"link": func(v *view, path string, parts ...string) string {
		p := Prefix + path
		for _, s := range parts {
			p += pathEscape(s)
		}
		if v.DC != "" {
			p += "?dc=" + url.QueryEscape(v.DC)
		}
		return p
	},
	"statusClass": func(s string) string {
		switch s {
		case "passing", "warning", "critical", "alive", "failed", "left", "leaving":
			return "st-" + s
		}
		return "st-unknown"
	},
	"join": strings.Join,
	"crumbArgs": func(v *view, c []kvEntry) map[string]any {
		return map[string]any{"V": v, "C": c}
	},
}

// pathEscape escapes a path segment but keeps '/', so KV keys stay
// readable in links.
func pathEscape(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// ---- Services ----

type serviceRow struct {
	Name                       string
	Tags                       []string
	Instances                  int
	Passing, Warning, Critical int
	Worst                      string
}

type servicesData struct {
	Rows   []serviceRow
	Filter string
	Sort   string
	Total  int
}

func (h *Handler) servicesPage(v *view) error {
	v.Title = "Services"
	var svcs map[string][]string
	if _, err := v.get("/v1/catalog/services", nil, &svcs); err != nil {
		return err
	}
	// The page follows every check change: any of them moves a count.
	var all []*structs.HealthCheck
	idx, err := v.get("/v1/health/state/any", nil, &all)
	if err != nil {
		return err
	}
	v.watch("/v1/health/state/any", nil, idx)
	q := v.req.URL.Query()
	d := servicesData{Filter: q.Get("filter"), Sort: q.Get("sort"), Total: len(svcs)}
	if !slices.Contains(sortKeys, d.Sort) {
		v.Status = http.StatusBadRequest
		return fmt.Errorf("sort: %q is not one of %s", d.Sort, strings.Join(sortKeys[1:], ", "))
	}
	for name, tags := range svcs {
		if !matches(d.Filter, name, tags) {
			continue
		}
		var entries []*structs.CheckServiceNode
		if _, err := v.get("/v1/health/service/"+url.PathEscape(name), nil, &entries); err != nil {
			return err
		}
		row := serviceRow{Name: name, Tags: tags, Instances: len(entries)}
		for _, e := range entries {
			for _, c := range e.Checks {
				switch c.Status {
				case "passing":
					row.Passing++
				case "warning":
					row.Warning++
				case "critical":
					row.Critical++
				}
			}
		}
		row.Worst = worst(row.Passing, row.Warning, row.Critical)
		d.Rows = append(d.Rows, row)
	}
	sortRows(d.Rows, d.Sort)
	v.Data = d
	return nil
}

func worst(p, w, c int) string {
	switch {
	case c > 0:
		return "critical"
	case w > 0:
		return "warning"
	case p > 0:
		return "passing"
	}
	return "no checks"
}

func matches(filter, name string, tags []string) bool {
	f := strings.ToLower(strings.TrimSpace(filter))
	if f == "" || strings.Contains(strings.ToLower(name), f) {
		return true
	}
	for _, t := range tags {
		if strings.Contains(strings.ToLower(t), f) {
			return true
		}
	}
	return false
}

// sortKeys are the ?sort= values of the Services page ("" is name).
var sortKeys = []string{"", "name", "instances", "passing", "warning", "critical"}

// sortRows orders by name, or by a count (largest first, then name).
func sortRows(rows []serviceRow, by string) {
	key := func(r serviceRow) int {
		switch by {
		case "instances":
			return r.Instances
		case "passing":
			return r.Passing
		case "warning":
			return r.Warning
		case "critical":
			return r.Critical
		}
		return 0
	}
	slices.SortFunc(rows, func(a, b serviceRow) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// ---- Service detail ----

type instance struct {
	Node, ID, Address string
	Port              int
	Tags              []string
	Meta              []kvPair
	Checks            []*structs.HealthCheck
	Worst             string
}

type kvPair struct{ K, V string }

func sortedPairs(m map[string]string) []kvPair {
	out := make([]kvPair, 0, len(m))
	for k, v := range m {
		out = append(out, kvPair{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

func (h *Handler) servicePage(v *view, name string) error {
	v.Title = "Service " + name
	var entries []*structs.CheckServiceNode
	path := "/v1/health/service/" + url.PathEscape(name)
	idx, err := v.get(path, nil, &entries)
	if err != nil {
		return err
	}
	v.watch(path, nil, idx)
	var out []instance
	for _, e := range entries {
		if e.Node == nil || e.Service == nil {
			continue
		}
		in := instance{Node: e.Node.Node, ID: e.Service.ID, Address: cmp.Or(e.Service.Address, e.Node.Address),
			Port: e.Service.Port, Tags: e.Service.Tags, Meta: sortedPairs(e.Service.Meta), Checks: e.Checks}
		var p, w, c int
		for _, ch := range e.Checks {
			switch ch.Status {
			case "passing":
				p++
			case "warning":
				w++
			case "critical":
				c++
			}
		}
		in.Worst = worst(p, w, c)
		out = append(out, in)
	}
	if len(out) == 0 {
		v.Status = http.StatusNotFound
	}
	v.Data = struct {
		Name      string
		Instances []instance
	}{name, out}
	return nil
}

// ---- Nodes ----

type nodeRow struct {
	Node, Address, Gossip      string
	Passing, Warning, Critical int
	Worst                      string
}

func (h *Handler) nodesPage(v *view) error {
	v.Title = "Nodes"
	var nodes []*structs.Node
	idx, err := v.get("/v1/catalog/nodes", nil, &nodes)
	if err != nil {
		return err
	}
	v.watch("/v1/catalog/nodes", nil, idx)
	var checks []*structs.HealthCheck
	if _, err := v.get("/v1/health/state/any", nil, &checks); err != nil {
		return err
	}
	gossip := v.memberStatus(false)
	rows := make([]nodeRow, 0, len(nodes))
	for _, n := range nodes {
		r := nodeRow{Node: n.Node, Address: n.Address, Gossip: cmp.Or(gossip[n.Node], "unknown")}
		for _, c := range checks {
			if c.Node != n.Node {
				continue
			}
			switch c.Status {
			case "passing":
				r.Passing++
			case "warning":
				r.Warning++
			case "critical":
				r.Critical++
			}
		}
		r.Worst = worst(r.Passing, r.Warning, r.Critical)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b nodeRow) int { return strings.Compare(a.Node, b.Node) })
	v.Data = rows
	return nil
}

// member is the part of /v1/agent/members the UI shows.
type member struct {
	Name   string
	Addr   string
	Port   uint16
	Tags   map[string]string
	Status int
}

// memberStatusName maps serf's numeric status (as Consul reports it).
func memberStatusName(s int) string {
	switch s {
	case 1:
		return "alive"
	case 2:
		return "leaving"
	case 3:
		return "left"
	case 4:
		return "failed"
	}
	return "none"
}

func (v *view) members(wan bool) ([]member, error) {
	q := url.Values{}
	if wan {
		q.Set("wan", "1")
	}
	var ms []member
	// Members are the agent's own view: no ?dc=.
	dc := v.DC
	v.DC = ""
	_, err := v.get("/v1/agent/members", q, &ms)
	v.DC = dc
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.Name, b.Name) })
	return ms, err
}

func (v *view) memberStatus(wan bool) map[string]string {
	ms, _ := v.members(wan)
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.Name] = memberStatusName(m.Status)
	}
	return out
}

func (h *Handler) nodePage(v *view, name string) error {
	v.Title = "Node " + name
	var cat struct {
		Node     *structs.Node
		Services map[string]*structs.NodeService
	}
	if _, err := v.get("/v1/catalog/node/"+url.PathEscape(name), nil, &cat); err != nil {
		return err
	}
	if cat.Node == nil {
		return &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("node %q is not in the catalog", name)}
	}
	var checks []*structs.HealthCheck
	path := "/v1/health/node/" + url.PathEscape(name)
	idx, err := v.get(path, nil, &checks)
	if err != nil {
		return err
	}
	v.watch(path, nil, idx)
	svcs := make([]*structs.NodeService, 0, len(cat.Services))
	for _, s := range cat.Services {
		svcs = append(svcs, s)
	}
	slices.SortFunc(svcs, func(a, b *structs.NodeService) int { return strings.Compare(a.ID, b.ID) })
	v.Data = struct {
		Node     *structs.Node
		Meta     []kvPair
		Gossip   string
		Services []*structs.NodeService
		Checks   []*structs.HealthCheck
	}{cat.Node, sortedPairs(cat.Node.Meta), cmp.Or(v.memberStatus(false)[name], "not in this agent's LAN pool"), svcs, checks}
	return nil
}

// ---- Key/value ----

type kvEntry struct {
	Name   string // last path element (folders end in "/")
	Full   string
	Folder bool
}

// crumbs are the folder links of a KV path.
func crumbs(path string) []kvEntry {
	out := []kvEntry{{Name: "(root)", Full: "", Folder: true}}
	acc := ""
	parts := strings.Split(strings.TrimSuffix(path, "/"), "/")
	for i, p := range parts {
		if p == "" {
			continue
		}
		acc += p
		if i < len(parts)-1 || strings.HasSuffix(path, "/") {
			acc += "/"
			out = append(out, kvEntry{Name: p, Full: acc, Folder: true})
		}
	}
	return out
}

func (h *Handler) kvFolderPage(v *view, prefix string) error {
	v.Title = "Key/value " + cmp.Or(prefix, "/")
	var keys []string
	path := "/v1/kv/" + pathEscape(prefix)
	q := url.Values{"keys": {""}, "separator": {"/"}}
	idx, err := v.get(path, q, &keys)
	var ae *apiError
	if err != nil && !(asAPIError(err, &ae) && ae.Status == http.StatusNotFound) {
		return err
	}
	v.watch(path, q, idx)
	var ents []kvEntry
	for _, k := range keys {
		name := strings.TrimPrefix(k, prefix)
		if name == "" {
			continue // the folder's own key
		}
		ents = append(ents, kvEntry{Name: name, Full: k, Folder: strings.HasSuffix(k, "/")})
	}
	v.Data = struct {
		Prefix  string
		Crumbs  []kvEntry
		Entries []kvEntry
	}{prefix, crumbs(prefix), ents}
	return nil
}

func (h *Handler) kvKeyPage(v *view, key string) error {
	v.Title = "Key " + key
	var ents []struct {
		Key         string
		Value       string // base64
		Flags       uint64
		CreateIndex uint64
		ModifyIndex uint64
	}
	if _, err := v.get("/v1/kv/"+pathEscape(key), nil, &ents); err != nil {
		var ae *apiError
		if asAPIError(err, &ae) && ae.Status == http.StatusNotFound {
			return &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("key %q does not exist", key)}
		}
		return err
	}
	if len(ents) == 0 {
		return &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("key %q does not exist", key)}
	}
	e := ents[0]
	raw, err := base64.StdEncoding.DecodeString(e.Value)
	if err != nil {
		return fmt.Errorf("key %q: value is not base64: %w", key, err)
	}
	text, binary := string(raw), !utf8.Valid(raw)
	if binary {
		text = hex.Dump(raw)
	}
	parent := ""
	if i := strings.LastIndex(key, "/"); i >= 0 {
		parent = key[:i+1]
	}
	v.Data = struct {
		Key, Value, Parent string
		Binary             bool
		Size               int
		Flags              uint64
		ModifyIndex        uint64
		Crumbs             []kvEntry
	}{key, text, parent, binary, len(raw), e.Flags, e.ModifyIndex, crumbs(key)}
	return nil
}
