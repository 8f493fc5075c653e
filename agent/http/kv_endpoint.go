package http

import (
	"errors"
	nethttp "net/http"
	"net/url"
	"strings"

	"github.com/cairnd/cairn/cluster/structs"
)

// kv serves /v1/kv/<key> for GET, PUT and DELETE.
func (a *handler) kv(w nethttp.ResponseWriter, r *nethttp.Request, key string) error {
	// Consul's CLI strips one leading slash; doing it here too means
	// /v1/kv//a and /v1/kv/a name the same key.
	key = strings.TrimPrefix(key, "/")
	if err := validKey(key); err != nil {
		return err
	}
	q := r.URL.Query()
	switch r.Method {
	case nethttp.MethodGet:
		return a.kvGet(w, r, q, key)
	case nethttp.MethodPut:
		return a.kvPut(w, r, q, key)
	default:
		return a.kvDelete(w, r, q, key)
	}
}

// validKey refuses keys no client could mean: invalid UTF-8, control
// characters (they break logs, CLIs and the DNS-safe watch paths).
func validKey(key string) error {
	return validText("key", key)
}

func (a *handler) kvGet(w nethttp.ResponseWriter, r *nethttp.Request, q url.Values, key string) error {
	args := structs.KeyRequest{Key: key}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	if _, keys := q["keys"]; keys {
		args.Separator = q.Get("separator")
		var out structs.IndexedKeyList
		if err := a.b.RPC(r.Context(), structs.MethodKVSListKeys, &args, &out); err != nil {
			return err
		}
		setQueryMeta(w, &out.QueryMeta)
		if len(out.Keys) == 0 {
			return notFoundEmpty(w)
		}
		return writeJSON(w, r, out.Keys)
	}
	method := structs.MethodKVSGet
	if _, recurse := q["recurse"]; recurse {
		method = structs.MethodKVSList
	}
	var out structs.IndexedDirEntries
	if err := a.b.RPC(r.Context(), method, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	if len(out.Entries) == 0 {
		return notFoundEmpty(w)
	}
	if _, raw := q["raw"]; raw {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(nethttp.StatusOK)
		_, _ = w.Write(out.Entries[0].Value)
		return nil
	}
	return writeJSON(w, r, out.Entries)
}

// notFoundEmpty is Consul's KV miss: 404, no body, meta headers set.
func notFoundEmpty(w nethttp.ResponseWriter) error {
	w.WriteHeader(nethttp.StatusNotFound)
	return nil
}

func (a *handler) kvPut(w nethttp.ResponseWriter, r *nethttp.Request, q url.Values, key string) error {
	if key == "" {
		return badRequest("Missing key name")
	}
	args := structs.KVSRequest{Datacenter: a.datacenter(q), Op: structs.KVSet}
	args.DirEnt.Key = key
	flags, _, err := uintParam(q, "flags")
	if err != nil {
		return err
	}
	args.DirEnt.Flags = flags
	cas, isCAS, err := uintParam(q, "cas")
	if err != nil {
		return err
	}
	if isCAS {
		args.Op, args.DirEnt.ModifyIndex = structs.KVCAS, cas
	}
	if err := kvLockParams(q, &args); err != nil {
		return err
	}
	value, err := readBody(r, MaxKVValueSize)
	if err != nil {
		return err
	}
	if len(value) > 0 {
		args.DirEnt.Value = value
	}
	return a.kvApply(w, r, &args)
}

func (a *handler) kvDelete(w nethttp.ResponseWriter, r *nethttp.Request, q url.Values, key string) error {
	args := structs.KVSRequest{Datacenter: a.datacenter(q), Op: structs.KVDelete}
	args.DirEnt.Key = key
	_, recurse := q["recurse"]
	cas, isCAS, err := uintParam(q, "cas")
	if err != nil {
		return err
	}
	switch {
	case recurse && isCAS:
		return badRequest("Conflicting flags: ?recurse with ?cas")
	case recurse:
		args.Op = structs.KVDeleteTree
	case key == "":
		return badRequest("Missing key name")
	case isCAS:
		args.Op, args.DirEnt.ModifyIndex = structs.KVDeleteCAS, cas
	}
	return a.kvApply(w, r, &args)
}

// kvApply writes; CAS and lock ops answer whether they took effect,
// others true.
func (a *handler) kvApply(w nethttp.ResponseWriter, r *nethttp.Request, args *structs.KVSRequest) error {
	if err := validateWrite(args); err != nil {
		return err
	}
	var out structs.WriteResponse
	err := a.b.RPC(r.Context(), structs.MethodKVSApply, args, &out)
	// Lock ops answer, like CAS, whether they took effect.
	cas := args.Op == structs.KVCAS || args.Op == structs.KVDeleteCAS ||
		args.Op == structs.KVLock || args.Op == structs.KVUnlock
	switch {
	case err != nil && cas && errors.Is(err, structs.ErrCASConflict):
		return writeJSON(w, r, false)
	case err != nil:
		return err
	case cas:
		return writeJSON(w, r, out.Success)
	}
	return writeJSON(w, r, true)
}
