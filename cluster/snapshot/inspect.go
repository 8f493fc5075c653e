package snapshot

import (
	"bytes"
	"fmt"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// Info is what `cairn snapshot inspect` prints, Consul's fields plus the
// record count of each table.
type Info struct {
	ID      string       `json:"ID"`
	Size    int64        `json:"Size"`
	Index   uint64       `json:"Index"`
	Term    uint64       `json:"Term"`
	Version int          `json:"Version"`
	Tables  []TableCount `json:"Tables"`
}

// TableCount is the number of records of one table in the snapshot.
type TableCount struct {
	Name  string `json:"Name"`
	Count int    `json:"Count"`
}

// Verify decodes the FSM stream fully (as a restore would) and returns the
// store it describes. An archive that passes Read but whose stream the
// state machine cannot load is refused here, before anything is replaced.
func (a *Archive) Verify() (*state.Store, error) {
	st, err := state.Restore(bytes.NewReader(a.State))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return st, nil
}

// Inspect verifies the archive and summarises it.
func (a *Archive) Inspect() (*Info, error) {
	st, err := a.Verify()
	if err != nil {
		return nil, err
	}
	_, nodes := st.Nodes()
	services := 0
	for _, n := range nodes {
		if _, ns := st.NodeServices(n.Node); ns != nil {
			services += len(ns.Services)
		}
	}
	_, checks := st.ChecksInState(structs.HealthAny)
	_, kvs := st.KVSList("")
	_, sessions := st.SessionList()
	_, queries := st.PreparedQueryList()
	_, coords := st.Coordinates()
	return &Info{
		ID: a.Meta.ID, Size: a.Meta.Size, Index: a.Meta.Index, Term: a.Meta.Term,
		Version: int(a.Meta.Version),
		Tables: []TableCount{
			{Name: "Nodes", Count: len(nodes)},
			{Name: "Services", Count: services},
			{Name: "Checks", Count: len(checks)},
			{Name: "KVS", Count: len(kvs)},
			{Name: "Sessions", Count: len(sessions)},
			{Name: "PreparedQuery", Count: len(queries)},
			{Name: "Coordinate", Count: len(coords)},
		},
	}, nil
}
