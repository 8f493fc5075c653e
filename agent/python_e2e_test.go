package agent_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
)

// pythonBin is Debian's interpreter, where python3-consul installs (a
// pyenv or venv python3 on PATH would not see it).
const pythonBin = "/usr/bin/python3"

// TestPythonConsulSmoke runs testdata/python/smoke.py (Debian's
// python3-consul client) against a real dev agent: register a service with
// a TTL check, pass it, see it in health.service(passing), KV put/get/CAS/
// delete. Skipped when python3-consul is not installed (.ci/run installs it).
func TestPythonConsulSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	if out, err := exec.Command(pythonBin, "-c", "import consul").CombinedOutput(); err != nil {
		t.Skipf("python3-consul not available (%s -c 'import consul': %v: %s); install it with apt-get install python3-consul", pythonBin, err, out)
	}
	p := agenttest.StartAgent(t, agenttest.Binary(t), "dev", "--dev")
	script, err := filepath.Abs(filepath.Join("testdata", "python", "smoke.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin, script, strconv.Itoa(p.Ports.HTTP))
	out, err := cmd.CombinedOutput()
	t.Logf("smoke.py output:\n%s", out)
	if err != nil {
		t.Fatalf("smoke.py: %v", err)
	}
}
