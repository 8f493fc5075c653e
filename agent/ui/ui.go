package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

// Security headers of every UI response. The CSP allows nothing but the
// UI's own static files: no inline script or style, no other origin.
const (
	contentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	// maxAPIBody bounds one in-process API answer the UI renders (a KV
	// value is at most 512 KiB; a catalog page of thousands of rows fits).
	maxAPIBody = 16 << 20
	// resolveTimeout bounds the resolve box's DNS query.
	resolveTimeout = 3 * time.Second
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the UI needs from the agent.
type Config struct {
	// API is the agent's HTTP API handler: every page reads through it,
	// exactly as a remote client would (see doc.go).
	API http.Handler
	// DNSAddr is the agent's DNS address (host:port) the resolve box
	// queries; empty when the DNS port is off.
	DNSAddr string
	// Domain is the agent's DNS domain ("consul."), for the resolve box's
	// examples.
	Domain string
	Logger *zap.Logger
}

// Handler serves the UI under Prefix.
type Handler struct {
	cfg    Config
	log    *zap.Logger
	pages  map[string]*template.Template
	static http.Handler
}

// New parses the embedded templates and returns the UI handler.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil {
		return nil, fmt.Errorf("ui: Config.API is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.Named("ui"), pages: map[string]*template.Template{}}
	for _, p := range []string{"services", "service", "nodes", "node", "kvfolder", "kvkey", "cluster", "agent", "error"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", p, err)
		}
		h.pages[p] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	h.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return h, nil
}

// ServeHTTP routes /ui/... to the pages.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the UI only reads; writes go to the HTTP API", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), Prefix)
	if !ok {
		if r.URL.Path+"/" == Prefix {
			redirect(w, r, "services")
			return
		}
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(rest, "static/") {
		hd.Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
		return
	}
	hd.Set("Cache-Control", "no-store")
	section, arg, _ := strings.Cut(rest, "/")
	arg, err := url.PathUnescape(arg)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "bad path: "+err.Error())
		return
	}
	if dc := r.URL.Query().Get("dc"); dc != "" && !validDC(dc) {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("dc: %q is not a datacenter name", dc))
		return
	}
	v := h.newView(r)
	switch {
	case section == "":
		redirect(w, r, "services")
	case section == "services" && arg == "":
		h.render(w, r, v, "services", h.servicesPage)
	case section == "services":
		h.render(w, r, v, "service", func(v *view) error { return h.servicePage(v, arg) })
	case section == "nodes" && arg == "":
		h.render(w, r, v, "nodes", h.nodesPage)
	case section == "nodes":
		h.render(w, r, v, "node", func(v *view) error { return h.nodePage(v, arg) })
	case section == "kv" && (arg == "" || strings.HasSuffix(arg, "/")):
		h.render(w, r, v, "kvfolder", func(v *view) error { return h.kvFolderPage(v, arg) })
	case section == "kv":
		h.render(w, r, v, "kvkey", func(v *view) error { return h.kvKeyPage(v, arg) })
	case section == "cluster" && arg == "":
		h.render(w, r, v, "cluster", h.clusterPage)
	case section == "agent" && arg == "":
		h.render(w, r, v, "agent", h.agentPage)
	default:
		h.fail(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	}
}

func redirect(w http.ResponseWriter, r *http.Request, to string) {
	u := Prefix + to
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// render fills v with fill and writes the page; an API error becomes an
// error page with the API's status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, v *view, page string, fill func(*view) error) {
	v.Page = page
	status := http.StatusOK
	if err := fill(v); err != nil {
		var ae *apiError
		if asAPIError(err, &ae) {
			status = ae.Status
		} else {
			status = http.StatusInternalServerError
		}
		v.Error = err.Error()
		if v.Status != 0 {
			status = v.Status
		}
		if v.Title == "" {
			v.Title = "Error"
		}
		page = "error"
	} else if v.Status != 0 {
		status = v.Status
	}
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.Error("render", zap.String("page", page), zap.Error(err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := h.newView(r)
	v.Status = status
	h.render(w, r, v, "error", func(*view) error { return &apiError{Status: status, Msg: msg} })
}

// apiError is a non-2xx answer of the API, shown to the user as is.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func asAPIError(err error, out **apiError) bool {
	ae, ok := err.(*apiError) //nolint:errorlint // never wrapped
	if ok {
		*out = ae
	}
	return ok
}

// get calls the agent's HTTP API in process, as the browser's request
// would: same token, same datacenter, same context. It decodes a JSON
// answer into out and returns X-Consul-Index. A 404 is returned as an
// *apiError like any other failure.
func (v *view) get(path string, q url.Values, out any) (uint64, error) {
	if v.DC != "" {
		q = cloneValues(q)
		q.Set("dc", v.DC)
	}
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(v.req.Context(), http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.RemoteAddr = v.req.RemoteAddr
	req.Host = v.req.Host
	if tok := v.req.Header.Get("X-Consul-Token"); tok != "" {
		req.Header.Set("X-Consul-Token", tok)
	}
	rec := &recorder{header: http.Header{}}
	v.h.cfg.API.ServeHTTP(rec, req)
	idx, _ := strconv.ParseUint(rec.header.Get("X-Consul-Index"), 10, 64)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code != http.StatusOK {
		msg := strings.TrimSpace(rec.body.String())
		if msg == "" {
			msg = http.StatusText(rec.code)
		}
		return idx, &apiError{Status: rec.code, Msg: fmt.Sprintf("GET %s: %d %s", path, rec.code, msg)}
	}
	if rec.overflow {
		return idx, fmt.Errorf("GET %s: answer larger than %d bytes", path, maxAPIBody)
	}
	if out != nil {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return idx, fmt.Errorf("GET %s: decode: %w", path, err)
		}
	}
	return idx, nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// recorder is the in-process ResponseWriter of get.
type recorder struct {
	header   http.Header
	code     int
	body     bytes.Buffer
	overflow bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(p) > maxAPIBody {
		r.overflow = true
		return 0, fmt.Errorf("ui: API answer too large")
	}
	return r.body.Write(p)
}

func (r *recorder) Flush() {}
