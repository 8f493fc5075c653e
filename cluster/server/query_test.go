package server

import (
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestQueryMatches: one case per filter of a prepared query's Service
// block, as Consul applies them.
func TestQueryMatches(t *testing.T) {
	row := structs.CheckServiceNode{
		Node:    &structs.Node{Node: "n1", Meta: map[string]string{"rack": "r1"}},
		Service: &structs.NodeService{ID: "db", Service: "db", Tags: []string{"Primary", "v1"}, Meta: map[string]string{"ver": "2"}},
		Checks: []*structs.HealthCheck{
			{CheckID: "serfHealth", Status: structs.HealthPassing},
			{CheckID: "slow", Status: structs.HealthWarning},
		},
	}
	critical := row
	critical.Checks = append([]*structs.HealthCheck{{CheckID: "disk", Status: structs.HealthCritical}}, row.Checks...)
	for _, tc := range []struct {
		name string
		sq   structs.ServiceQuery
		row  structs.CheckServiceNode
		want bool
	}{
		{"no filters, warning is in", structs.ServiceQuery{}, row, true},
		{"OnlyPassing drops warning", structs.ServiceQuery{OnlyPassing: true}, row, false},
		{"IgnoreCheckIDs lifts the warning", structs.ServiceQuery{OnlyPassing: true, IgnoreCheckIDs: []string{"slow"}}, row, true},
		{"critical is always out", structs.ServiceQuery{}, critical, false},
		{"IgnoreCheckIDs lifts critical", structs.ServiceQuery{IgnoreCheckIDs: []string{"disk"}}, critical, true},
		{"tag, any case", structs.ServiceQuery{Tags: []string{"primary"}}, row, true},
		{"missing tag", structs.ServiceQuery{Tags: []string{"v2"}}, row, false},
		{"!tag excludes", structs.ServiceQuery{Tags: []string{"!v1"}}, row, false},
		{"!tag of an absent tag", structs.ServiceQuery{Tags: []string{"!v2", "v1"}}, row, true},
		{"NodeMeta match", structs.ServiceQuery{NodeMeta: map[string]string{"rack": "r1"}}, row, true},
		{"NodeMeta mismatch", structs.ServiceQuery{NodeMeta: map[string]string{"rack": "r2"}}, row, false},
		{"ServiceMeta match", structs.ServiceQuery{ServiceMeta: map[string]string{"ver": "2"}}, row, true},
		{"ServiceMeta missing key fails, even for \"\"", structs.ServiceQuery{ServiceMeta: map[string]string{"x": ""}}, row, false},
		{"ServiceMeta mismatch", structs.ServiceQuery{ServiceMeta: map[string]string{"ver": "3"}}, row, false},
	} {
		q := &structs.PreparedQuery{Service: tc.sq}
		if got := queryMatches(q, &tc.row); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
