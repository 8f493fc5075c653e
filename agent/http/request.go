package http

import (
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/structs"
)

// Limits. Each protects the agent (and the Raft log behind it) from one
// oversized request.
const (
	// MaxJSONBody bounds a JSON request body (registrations, check
	// updates). The largest legitimate body, a catalog registration with
	// many checks, is a few KiB; 1 MiB leaves room without letting one
	// request pin much memory.
	MaxJSONBody = 1 << 20
	// MaxKVValueSize is Consul's kv_max_value_size default: Raft's
	// suggested maximum entry size. Larger values answer 413.
	MaxKVValueSize = 512 * 1024
	// MaxEventPayload is serf's default user event size limit; a larger
	// event would be refused by gossip anyway, so refuse it up front.
	MaxEventPayload = 512
	// MaxCheckOutput is Consul's check output buffer (checks.BufSize):
	// longer outputs are truncated, not refused, as Consul does.
	MaxCheckOutput = 4 * 1024
	// MaxQueryTime caps ?wait, as Consul does (10 minutes).
	MaxQueryTime = 10 * time.Minute
)

// setMeta writes the three Consul read headers.
func setMeta(w nethttp.ResponseWriter, index uint64, knownLeader bool, lastContact time.Duration) {
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(knownLeader))
	h.Set("X-Consul-LastContact", strconv.FormatInt(lastContact.Milliseconds(), 10))
}

func setQueryMeta(w nethttp.ResponseWriter, m *structs.QueryMeta) {
	setMeta(w, m.Index, m.KnownLeader, m.LastContact)
	if m.ResultsFilteredByACLs {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
}

// writeJSON encodes v as the 200 response (?pretty indents it).
func writeJSON(w nethttp.ResponseWriter, r *nethttp.Request, v any) error {
	var (
		b   []byte
		err error
	)
	if _, pretty := r.URL.Query()["pretty"]; pretty {
		b, err = json.MarshalIndent(v, "", "    ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(nethttp.StatusOK)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func writeText(w nethttp.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// readBody reads the whole body, refusing more than limit bytes with 413.
func readBody(r *nethttp.Request, limit int64) ([]byte, error) {
	tooLarge := &httpError{code: nethttp.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("Request body too large, max size: %d bytes", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("Failed to read request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	return b, nil
}

// decodeBody strictly decodes a JSON body into v: keys match
// case-insensitively, unknown keys and wrong types are errors.
func decodeBody(r *nethttp.Request, v any) error {
	b, err := readBody(r, MaxJSONBody)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return badRequest("Request decode failed: empty body")
	}
	if err := invalidUTF8(b); err != nil {
		return err
	}
	if err := config.DecodeStrict(b, v); err != nil {
		return badRequest("Request decode failed: %v", err)
	}
	return nil
}

// parseQueryOptions reads Consul's blocking and consistency parameters.
func parseQueryOptions(q url.Values, o *structs.QueryOptions) error {
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("Invalid index %q", v)
		}
		o.MinQueryIndex = idx
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return badRequest("Invalid wait time %q", v)
		}
		o.MaxQueryTime = min(d, MaxQueryTime)
	}
	_, stale := q["stale"]
	_, consistent := q["consistent"]
	if stale && consistent {
		return badRequest("Cannot specify ?stale with ?consistent, conflicting semantics.")
	}
	o.AllowStale, o.RequireConsistent = stale, consistent
	if v := q.Get("max_stale"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return badRequest("Invalid max_stale value %q", v)
		}
		if consistent {
			return badRequest("Cannot specify ?max_stale with ?consistent, conflicting semantics.")
		}
		o.MaxStaleDuration, o.AllowStale = d, true
	}
	return nil
}

// parseRead parses ?dc and the query options.
func (a *handler) parseRead(r *nethttp.Request, dc *string, o *structs.QueryOptions) error {
	q := r.URL.Query()
	*dc = a.datacenter(q)
	return parseQueryOptions(q, o)
}

// readArgs parses ?dc, the query options and ?filter: the preamble of a
// filtered read.
func (a *handler) readArgs(r *nethttp.Request, dc *string, o *structs.QueryOptions) (*filter, error) {
	if err := a.parseRead(r, dc, o); err != nil {
		return nil, err
	}
	return parseFilter(r)
}

func (a *handler) datacenter(q url.Values) string {
	if dc := q.Get("dc"); dc != "" {
		return dc
	}
	return a.b.Datacenter()
}

// boolParam parses a flag parameter: absent → def; present and empty
// (?passing) → true; otherwise strconv.ParseBool.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	if len(vs) == 0 || vs[0] == "" {
		return true, nil
	}
	v, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, badRequest("Invalid value %q for ?%s", vs[0], name)
	}
	return v, nil
}

func uintParam(q url.Values, name string) (uint64, bool, error) {
	if _, ok := q[name]; !ok {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(q.Get(name), 10, 64)
	if err != nil {
		return 0, false, badRequest("Invalid value %q for ?%s", q.Get(name), name)
	}
	return v, true, nil
}

// validName rejects path arguments (node, service, check IDs, event
// names) that cannot be right: empty, invalid UTF-8 or control characters.
func validName(kind, s string) error {
	if s == "" {
		return badRequest("Missing %s", kind)
	}
	return validText(kind, s)
}

func validText(kind, s string) error {
	if !utf8.ValidString(s) {
		return badRequest("Invalid %s: not valid UTF-8", kind)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return badRequest("Invalid %s %q: contains control characters", kind, s)
		}
	}
	return nil
}
