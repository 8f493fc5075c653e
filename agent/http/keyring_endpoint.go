package http

import (
	"context"
	nethttp "net/http"
)

// KeyringBackend is implemented by backends that manage the gossip
// keyring (/v1/operator/keyring). It is optional so that backends without
// gossip (tests, tools) need not implement it; the endpoint answers 501
// for them.
type KeyringBackend interface {
	// Keyring runs op ("list", "install", "use", "remove") with key on
	// every gossip pool of the agent (LAN; WAN too on servers) and returns
	// one response per pool.
	Keyring(ctx context.Context, op, key string) ([]KeyringResponse, error)
}

// KeyringResponse is Consul's per-pool keyring answer.
type KeyringResponse struct {
	WAN         bool
	Datacenter  string
	Segment     string
	Messages    map[string]string
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
}

// keyringRequest is Consul's body for install/use/remove.
type keyringRequest struct {
	Key string
}

func (a *handler) operatorKeyring(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	kb, ok := a.b.(KeyringBackend)
	if !ok {
		writeText(w, nethttp.StatusNotImplemented, "Keyring operations are not supported by this agent")
		return nil
	}
	var op string
	switch r.Method {
	case nethttp.MethodGet:
		op = "list"
	case nethttp.MethodPost:
		op = "install"
	case nethttp.MethodPut:
		op = "use"
	case nethttp.MethodDelete:
		op = "remove"
	}
	var req keyringRequest
	if op != "list" {
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if req.Key == "" {
			return badRequest("Key is required")
		}
	}
	out, err := kb.Keyring(r.Context(), op, req.Key)
	if err != nil {
		return err
	}
	if op == "list" {
		return writeJSON(w, r, nonNil(out))
	}
	return writeEmpty(w)
}
