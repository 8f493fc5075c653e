package http

import (
	"cmp"
	"math"
	nethttp "net/http"
	"slices"

	"github.com/hashicorp/serf/coordinate"

	"github.com/cairnd/cairn/cluster/structs"
)

func (a *handler) coordinateDatacenters(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out []structs.DatacenterMap
	if err := a.b.RPC(r.Context(), structs.MethodCoordinateListDatacenters, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, nonNil(out))
}

func (a *handler) coordinateNodes(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var args structs.DCSpecificRequest
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedCoordinates
	if err := a.b.RPC(r.Context(), structs.MethodCoordinateListNodes, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	return writeJSON(w, r, nonNil(out.Coordinates))
}

func (a *handler) coordinateNode(w nethttp.ResponseWriter, r *nethttp.Request, node string) error {
	args := structs.NodeSpecificRequest{Node: node}
	if err := validName("node name", node); err != nil {
		return err
	}
	if err := a.parseRead(r, &args.Datacenter, &args.QueryOptions); err != nil {
		return err
	}
	var out structs.IndexedCoordinates
	if err := a.b.RPC(r.Context(), structs.MethodCoordinateNode, &args, &out); err != nil {
		return err
	}
	setQueryMeta(w, &out.QueryMeta)
	if len(out.Coordinates) == 0 {
		return &httpError{code: nethttp.StatusNotFound, msg: "Unknown node or no coordinate for node " + node}
	}
	return writeJSON(w, r, out.Coordinates)
}

// coordinateUpdateBody is Consul's /v1/coordinate/update body.
type coordinateUpdateBody struct {
	Node      string
	Segment   string
	Coord     *coordinate.Coordinate
	Partition string
}

func (a *handler) coordinateUpdate(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	var body coordinateUpdateBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	args := structs.CoordinateUpdateRequest{Datacenter: a.datacenter(r.URL.Query()), Node: body.Node, Segment: body.Segment, Coord: body.Coord}
	if err := args.Validate(); err != nil {
		return badRequest("Invalid coordinate update: %v", err)
	}
	var out structs.WriteResponse
	if err := a.b.RPC(r.Context(), structs.MethodCoordinateUpdate, &args, &out); err != nil {
		return err
	}
	return writeJSON(w, r, true)
}

// sortNear orders rows by estimated RTT from the node ?near names
// ("_agent": this agent), nearest first, as Consul's ?near. Rows whose
// node has no coordinate keep their order after the others; without a
// coordinate for the source nothing moves. rows must be the caller's own
// slice (it is sorted in place).
func sortNear[T any](a *handler, r *nethttp.Request, dc string, rows []T, nodeOf func(T) string) error {
	near := r.URL.Query().Get("near")
	if near == "" || len(rows) < 2 {
		return nil
	}
	if near == "_agent" {
		near = a.b.NodeName()
	}
	args := structs.DCSpecificRequest{Datacenter: dc, QueryOptions: structs.QueryOptions{AllowStale: true}}
	var out structs.IndexedCoordinates
	if err := a.b.RPC(r.Context(), structs.MethodCoordinateListNodes, &args, &out); err != nil {
		return err
	}
	byNode := make(map[string]*coordinate.Coordinate, len(out.Coordinates))
	for _, c := range out.Coordinates {
		byNode[c.Node] = c.Coord
	}
	src := byNode[near]
	if src == nil {
		return nil
	}
	dist := func(node string) float64 {
		c := byNode[node]
		if c == nil || !src.IsCompatibleWith(c) {
			return math.Inf(1)
		}
		return src.DistanceTo(c).Seconds()
	}
	slices.SortStableFunc(rows, func(x, y T) int { return cmp.Compare(dist(nodeOf(x)), dist(nodeOf(y))) })
	return nil
}
