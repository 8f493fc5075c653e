package http

import (
	"crypto/rand"
	"fmt"
	"hash/fnv"
	nethttp "net/http"
	"regexp"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

const (
	// eventPollInterval is how often a blocking /v1/event/list looks for
	// new events: the Backend offers no notification, and events are rare
	// and human-paced, so 100ms is prompt without measurable cost.
	eventPollInterval = 100 * time.Millisecond
	// defaultEventWait is the blocking time when ?index is given without
	// ?wait, Consul's default query time.
	defaultEventWait = 5 * time.Minute
)

func (a *handler) eventFire(w nethttp.ResponseWriter, r *nethttp.Request, name string) error {
	if err := validName("event name", name); err != nil {
		return err
	}
	q := r.URL.Query()
	ev := structs.UserEvent{
		Name:          name,
		NodeFilter:    q.Get("node"),
		ServiceFilter: q.Get("service"),
		TagFilter:     q.Get("tag"),
		Version:       1,
	}
	if ev.TagFilter != "" && ev.ServiceFilter == "" {
		return badRequest("Cannot provide tag filter without service filter")
	}
	for what, re := range map[string]string{"node": ev.NodeFilter, "service": ev.ServiceFilter, "tag": ev.TagFilter} {
		if _, err := regexp.Compile(re); err != nil {
			return badRequest("Invalid %s filter: %v", what, err)
		}
	}
	payload, err := readBody(r, MaxEventPayload)
	if err != nil {
		return err
	}
	if len(payload) > 0 {
		ev.Payload = payload
	}
	ev.ID = newUUID()
	args := structs.EventFireRequest{Datacenter: a.datacenter(q), Event: ev}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodEventFire, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, &ev)
}

func (a *handler) eventList(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	q := r.URL.Query()
	var opts structs.QueryOptions
	if err := parseQueryOptions(q, &opts); err != nil {
		return err
	}
	name := q.Get("name")
	events, index := a.listEvents(name)
	if opts.MinQueryIndex > 0 && index == opts.MinQueryIndex {
		wait := opts.MaxQueryTime
		if wait == 0 {
			wait = defaultEventWait
		}
		timeout := time.NewTimer(wait)
		defer timeout.Stop()
		tick := time.NewTicker(eventPollInterval)
		defer tick.Stop()
	poll:
		for index == opts.MinQueryIndex {
			select {
			case <-r.Context().Done():
				return r.Context().Err()
			case <-timeout.C:
				break poll
			case <-tick.C:
				events, index = a.listEvents(name)
			}
		}
	}
	setMeta(w, index, true, 0)
	events, err := a.filterEvents(r, events)
	if err != nil {
		return err
	}
	return writeJSON(w, r, events)
}

// listEvents returns the events named name (all if "") and an index that
// changes whenever a new event arrives: a hash of the newest event's ID,
// as Consul derives it from the ID. It is never 0, so watchers can block.
func (a *handler) listEvents(name string) ([]structs.UserEvent, uint64) {
	all := a.b.UserEvents()
	out := make([]structs.UserEvent, 0, len(all))
	for _, e := range all {
		if name == "" || e.Name == name {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return out, 1
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(out[len(out)-1].ID))
	return out, max(h.Sum64(), 2)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
