package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// TestJoinLeaveForceLeave joins two dev servers' WAN pools (dc1, dc2)
// through `cairn join --wan`, then makes dc2's leave with `cairn leave`:
// its agent.Run must return, and dc1 must see it as left.
func TestJoinLeaveForceLeave(t *testing.T) {
	wan, name, dc := 0, "cli-dc2", "dc2"
	dc1 := startAgent(t, AgentCmd{Dev: true, SerfWANPort: &wan})
	dc2 := startAgent(t, AgentCmd{Dev: true, SerfWANPort: &wan, Node: &name, Datacenter: &dc})

	check(t, "join nothing", dc1.HTTPAddr, &JoinCmd{Addrs: []string{unreachable}}, "", result{
		stderr: "~^Error joining address '127.0.0.1:1': Unexpected response code: 500 .*\nFailed to join any nodes.\n$", code: 1})
	check(t, "join", dc1.HTTPAddr, &JoinCmd{WAN: true, Addrs: []string{dc2.SerfWANAddr}}, "", result{
		stdout: "Successfully joined cluster by contacting 1 nodes.\n"})
	check(t, "join agent down", unreachable, &JoinCmd{Addrs: []string{dc2.SerfAddr}}, "", result{
		stderr: "~^Error joining address .*connection refused\nFailed to join any nodes.\n$", code: 1})
	members := func(status, want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "dc1 sees "+want+" "+status, func() error {
			got := run(t, dc1.HTTPAddr, &MembersCmd{WAN: true, Status: status}, "")
			if !strings.Contains(got.stdout, want) {
				return fmt.Errorf("members --wan: %s", got)
			}
			return nil
		})
	}
	members("alive", "cli-dc2.dc2")

	// Forcing out a member that is alive or unknown is a no-op, as serf's.
	check(t, "force-leave unknown", dc1.HTTPAddr, &ForceLeaveCmd{Node: "nobody"}, "", result{})
	check(t, "force-leave bad name", dc1.HTTPAddr, &ForceLeaveCmd{Node: "bad\x01name"}, "", result{
		stderr: "~^Error force leaving: Unexpected response code: 40", code: 1})
	check(t, "force-leave agent down", unreachable, &ForceLeaveCmd{Node: "x", Prune: true}, "", result{
		stderr: "~^Error force leaving: Error connecting", code: 1})

	check(t, "leave", dc2.HTTPAddr, &LeaveCmd{}, "", result{stdout: "Graceful leave complete\n"})
	select {
	case err := <-dc2.done:
		dc2.done <- err
		if err != nil {
			t.Fatalf("dc2 agent after leave: %v", err)
		}
	case <-time.After(agentDownTimeout):
		t.Fatal("dc2 agent still running after cairn leave")
	}
	members("left", "cli-dc2.dc2")
	check(t, "leave agent down", unreachable, &LeaveCmd{}, "", result{stderr: "~^Error leaving: Error connecting", code: 1})
}
