package main

import (
	"regexp"
	"testing"
)

func TestOperatorRaftListPeers(t *testing.T) {
	a := devAgent(t)
	for _, stale := range []bool{false, true} {
		got := check(t, "list-peers", a.HTTPAddr, &OperatorRaftListPeersCmd{Stale: stale}, "", result{
			stdout: "~^Node +ID +Address +State +Voter +RaftProtocol\ncli-test +cli-test +127\\.0\\.0\\.1:\\d+ +leader +true +3 *\n$"})
		golden(t, "operator_raft_list_peers", maskPorts(got.stdout))
	}
	check(t, "agent down", unreachable, &OperatorRaftListPeersCmd{}, "", result{
		stderr: "~^" + regexp.QuoteMeta("Error getting peers: Error connecting to Cairn agent: "), code: 1})
}
