package state

import (
	"fmt"
	"slices"
	"strings"
)

// dump renders every table, indexes included, in a canonical order. nil
// and empty maps/slices print the same so a snapshot round trip compares
// equal.
func dump(s *Store) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tables nodes=%d services=%d checks=%d kvs=%d\n",
		s.TableIndex(TableNodes), s.TableIndex(TableServices), s.TableIndex(TableChecks), s.TableIndex(TableKVS))
	_, nodes := s.Nodes()
	for _, n := range nodes {
		fmt.Fprintf(&b, "node %s addr=%s", n.Node, n.Address)
		if n.ID != "" {
			fmt.Fprintf(&b, " id=%s", n.ID)
		}
		if len(n.Meta) > 0 {
			fmt.Fprintf(&b, " meta=%s", kvString(n.Meta))
		}
		fmt.Fprintf(&b, " idx=%d/%d\n", n.CreateIndex, n.ModifyIndex)
		_, ns := s.NodeServices(n.Node)
		ids := make([]string, 0, len(ns.Services))
		for id := range ns.Services {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			sv := ns.Services[id]
			fmt.Fprintf(&b, "  service %s name=%s tags=%v port=%d idx=%d/%d\n",
				sv.ID, sv.Service, sv.Tags, sv.Port, sv.CreateIndex, sv.ModifyIndex)
		}
		_, checks := s.NodeChecks(n.Node)
		for _, c := range checks {
			fmt.Fprintf(&b, "  check %s status=%s", c.CheckID, c.Status)
			if c.ServiceID != "" {
				fmt.Fprintf(&b, " service=%s/%s tags=%v", c.ServiceID, c.ServiceName, c.ServiceTags)
			}
			fmt.Fprintf(&b, " idx=%d/%d\n", c.CreateIndex, c.ModifyIndex)
		}
	}
	_, kvs := s.KVSList("")
	for _, e := range kvs {
		fmt.Fprintf(&b, "kv %s value=%q flags=%d lock=%d session=%q idx=%d/%d\n",
			e.Key, e.Value, e.Flags, e.LockIndex, e.Session, e.CreateIndex, e.ModifyIndex)
	}
	s.mu.RLock()
	s.tombKeys.ascendPrefix("", func(k string) bool {
		fmt.Fprintf(&b, "tombstone %s idx=%d\n", k, s.tombs[k])
		return true
	})
	s.mu.RUnlock()
	return b.String()
}

func kvString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + m[k]
	}
	return strings.Join(parts, ",")
}
