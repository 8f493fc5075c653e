package structs

import "github.com/hashicorp/serf/coordinate"

// CoordinateBatchUpdateType is the MessageType of coordinate writes
// (msgpack-encoded CoordinateBatchUpdateRequest).
const CoordinateBatchUpdateType MessageType = 12

// Coordinate RPC methods. Request → response types:
const (
	MethodCoordinateUpdate          = "Coordinate.Update"          // CoordinateUpdateRequest → WriteResponse
	MethodCoordinateListNodes       = "Coordinate.ListNodes"       // DCSpecificRequest → IndexedCoordinates
	MethodCoordinateNode            = "Coordinate.Node"            // NodeSpecificRequest → IndexedCoordinates
	MethodCoordinateListDatacenters = "Coordinate.ListDatacenters" // DCSpecificRequest → []DatacenterMap
)

// Coordinate is one node's network coordinate, Consul's shape.
type Coordinate struct {
	Node    string                 `json:"Node"`
	Segment string                 `json:"Segment"`
	Coord   *coordinate.Coordinate `json:"Coord"`
}

// CoordinateUpdateRequest sets one node's coordinate (the agent's own,
// or a seeded one through /v1/coordinate/update).
type CoordinateUpdateRequest struct {
	Datacenter string
	Node       string
	Segment    string
	Coord      *coordinate.Coordinate
}

// Validate implements Validator.
func (r *CoordinateUpdateRequest) Validate() error {
	if r.Node == "" {
		return &FieldError{Field: "Node", Reason: "missing"}
	}
	if r.Coord == nil || !r.Coord.IsValid() || uint(len(r.Coord.Vec)) != coordinate.DefaultConfig().Dimensionality {
		return &FieldError{Field: "Coord", Reason: "missing or invalid coordinate"}
	}
	return nil
}

// CoordinateBatchUpdateRequest is the Raft command: several updates.
type CoordinateBatchUpdateRequest struct {
	Updates []Coordinate
}

// IndexedCoordinates answers coordinate reads.
type IndexedCoordinates struct {
	Coordinates []*Coordinate
	QueryMeta
}

// DatacenterMap is the WAN coordinates of one datacenter's servers.
type DatacenterMap struct {
	Datacenter  string        `json:"Datacenter"`
	AreaID      string        `json:"AreaID"`
	Coordinates []*Coordinate `json:"Coordinates"`
}
