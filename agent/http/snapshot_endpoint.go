package http

import (
	"errors"
	nethttp "net/http"
	"strconv"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/snapshot"
	"github.com/cairnd/cairn/cluster/structs"
)

// maxSnapshotBody bounds a PUT /v1/snapshot body: the archive travels to
// the leader as one RPC frame, so a larger one could not be restored.
const maxSnapshotBody = rpc.DefaultMaxFrameSize

// snapshot is /v1/snapshot: GET saves (the body is the archive, as
// `consul snapshot save` receives it), PUT restores the archive in the
// body on every server.
func (a *handler) snapshot(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	if r.Method == nethttp.MethodPut {
		return a.snapshotRestore(w, r)
	}
	var q structs.QueryOptions
	args := structs.SnapshotRequest{}
	if err := a.parseRead(r, &args.Datacenter, &q); err != nil {
		return err
	}
	args.AllowStale = q.AllowStale
	var out structs.SnapshotResponse
	if err := a.b.RPC(r.Context(), structs.MethodSnapshotSave, &args, &out); err != nil {
		return err
	}
	setMeta(w, out.Index, true, 0)
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Archive)))
	w.WriteHeader(nethttp.StatusOK)
	_, _ = w.Write(out.Archive)
	return nil
}

func (a *handler) snapshotRestore(w nethttp.ResponseWriter, r *nethttp.Request) error {
	body, err := readBody(r, maxSnapshotBody)
	if err != nil {
		return err
	}
	// Check here too, so a damaged file gets a 400 with the reason even
	// when the server's error only comes back as text.
	if _, err := snapshot.Decode(body); err != nil {
		if errors.Is(err, snapshot.ErrCorrupt) {
			return badRequest("%v", err)
		}
		return err
	}
	args := structs.SnapshotRequest{Datacenter: a.datacenter(r.URL.Query()), Archive: body}
	var out structs.SnapshotResponse
	if err := a.b.RPC(r.Context(), structs.MethodSnapshotRestore, &args, &out); err != nil {
		return err
	}
	setMeta(w, out.Index, true, 0)
	w.WriteHeader(nethttp.StatusOK)
	return nil
}
