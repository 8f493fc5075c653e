package main

import (
	"testing"

	"github.com/cairnd/cairn/agent"
)

func TestVersion(t *testing.T) {
	check(t, "version", "", VersionCmd{}, "", result{stdout: "Cairn v" + agent.Version + "\n"})
}
