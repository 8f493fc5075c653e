package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairnd/cairn/agent/agenttest"
)

const corpus = "../../agent/config/testdata/corpus/"

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("datacenter = \"dc1\"\ndns_config {\n  only_pasing = true\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  ValidateCmd
		want result
	}{
		{"hcl server", ValidateCmd{Paths: []string{corpus + "server.hcl"}}, result{
			stdout: "Configuration is valid!\n", stderr: "~(?s)^" + corpus + `server.hcl:17: connect: ignored: .*telemetry: ignored`}},
		{"json and hcl together", ValidateCmd{Paths: []string{corpus + "client.json", corpus + "services.hcl"}}, result{
			stdout: "Configuration is valid!\n", stderr: "~retry_interval: ignored"}},
		{"whole dir, quiet", ValidateCmd{Paths: []string{"../../agent/config/testdata/mixed"}, Quiet: true}, result{
			stderr: "~skipping file .*README.md, extension must be .hcl or .json"}},
		{"unknown key", ValidateCmd{Paths: []string{bad}}, result{
			stderr: "Config validation failed: config: " + bad + `:3: dns_config.only_pasing: unknown key (did you mean "only_passing"?)` + "\n", code: 1}},
		{"semantic error", ValidateCmd{Paths: []string{"../../agent/config/testdata/bad/server_no_data_dir.json"}}, result{
			stderr: "~^Config validation failed: ", code: 1}},
		{"missing path", ValidateCmd{Paths: []string{filepath.Join(dir, "nope")}}, result{
			stderr: "~^Config validation failed: config: config dir .*nope: ", code: 1}},
		{"no path", ValidateCmd{}, result{stderr: "Must specify at least one config file or directory\n", code: 1}},
	} {
		check(t, tc.name, unreachable, &tc.cmd, "", tc.want)
	}
}

// TestValidateExitCodes runs the real binary, as scripts and CI do.
func TestValidateExitCodes(t *testing.T) {
	bin := agenttest.Binary(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"validate", corpus}, 0},
		{[]string{"validate", "-quiet", corpus + "server.json"}, 0}, // Consul's one-dash flag
		{[]string{"validate", "../../agent/config/testdata/bad/hcl_unknown_key.hcl"}, 1},
		{[]string{"validate", corpus, "../../agent/config/testdata/bad/unknown_key.json"}, 1},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("cairn %v: exit %d, want %d\n%s", tc.args, code, tc.code, out)
		}
	}
}
