package server

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
)

func TestDeadServersToRemove(t *testing.T) {
	v := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	nv := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	alive, failed, left := serf.StatusAlive, serf.StatusFailed, serf.StatusLeft
	for _, tc := range []struct {
		name            string
		servers         []raft.Server
		status          map[string]serf.MemberStatus
		remove, refused string
	}{
		{"3 voters, 1 failed", []raft.Server{v("s1"), v("s2"), v("s3")},
			map[string]serf.MemberStatus{"s1": alive, "s2": alive, "s3": failed}, "[s3]", "[]"},
		{"3 voters, 1 left", []raft.Server{v("s1"), v("s2"), v("s3")},
			map[string]serf.MemberStatus{"s1": alive, "s2": left, "s3": alive}, "[s2]", "[]"},
		{"3 voters, 2 failed: none (1 alive of 2 is no quorum)", []raft.Server{v("s1"), v("s2"), v("s3")},
			map[string]serf.MemberStatus{"s1": alive, "s2": failed, "s3": failed}, "[]", "[s2 s3]"},
		{"5 voters, 2 failed: both", []raft.Server{v("s1"), v("s2"), v("s3"), v("s4"), v("s5")},
			map[string]serf.MemberStatus{"s1": alive, "s2": failed, "s3": alive, "s4": failed, "s5": alive}, "[s2 s4]", "[]"},
		{"5 voters, 3 failed: one, then the rest refused", []raft.Server{v("s1"), v("s2"), v("s3"), v("s4"), v("s5")},
			map[string]serf.MemberStatus{"s1": alive, "s2": failed, "s3": failed, "s4": failed, "s5": alive}, "[]", "[s2 s3 s4]"},
		{"unknown to serf: left alone", []raft.Server{v("s1"), v("s2"), v("s3")},
			map[string]serf.MemberStatus{"s1": alive, "s2": alive}, "[]", "[]"},
		{"self never", []raft.Server{v("s1"), v("s2"), v("s3")},
			map[string]serf.MemberStatus{"s1": failed, "s2": alive, "s3": alive}, "[]", "[]"},
		{"failed non-voter: always", []raft.Server{v("s1"), nv("s2")},
			map[string]serf.MemberStatus{"s1": alive, "s2": failed}, "[s2]", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remove, refused := deadServersToRemove(tc.servers, tc.status, "s1")
			ids := func(ss []raft.Server) string {
				out := []string{}
				for _, s := range ss {
					out = append(out, string(s.ID))
				}
				return fmt.Sprint(out)
			}
			if got := ids(remove); got != tc.remove {
				t.Errorf("remove %s, want %s", got, tc.remove)
			}
			if got := ids(refused); got != tc.refused {
				t.Errorf("refused %s, want %s", got, tc.refused)
			}
		})
	}
}
