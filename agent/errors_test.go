package agent_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/config"
)

// TestErrorsReachHTTP: the agent's own errors (ErrInvalid, ErrNotFound)
// come out of the HTTP API with the status agent/http maps them to, and
// with the agent's reason as the body.
func TestErrorsReachHTTP(t *testing.T) {
	_, addrs := inProcessAgent(t, t.TempDir(), "errs", func(c *config.Config) { c.Dev = true })
	base := "http://" + addrs.HTTP
	hc := &http.Client{Timeout: 5 * time.Second}
	put := func(path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put("/v1/agent/check/register", `{"Name":"plain","TTL":"1m"}`); code != 200 {
		t.Fatalf("register a TTL check: %d %s", code, body)
	}
	if code, body := put("/v1/agent/check/register", `{"Name":"tcp","TCP":"127.0.0.1:1","Interval":"1m"}`); code != 200 {
		t.Fatalf("register a TCP check: %d %s", code, body)
	}
	cases := []struct {
		name, path, body string
		code             int
		reason           string
	}{
		{"unknown check", "/v1/agent/check/pass/nope", "", 404, `not found: unknown check "nope"`},
		{"not a TTL check", "/v1/agent/check/pass/tcp", "", 400, `invalid request: check "tcp" is not a TTL check`},
		{"unknown service", "/v1/agent/service/deregister/nope", "", 404, `not found: unknown service "nope"`},
		{"maintenance of an unknown service", "/v1/agent/service/maintenance/nope?enable=true", "", 404, `not found: unknown service "nope"`},
		{"unknown check deregistered", "/v1/agent/check/deregister/nope", "", 404, `not found: unknown check "nope"`},
		{"check of an unknown service", "/v1/agent/check/register", `{"Name":"c","TTL":"1m","ServiceID":"nope"}`, 400, `invalid request: ServiceID "nope" does not exist`},
		{"keyring without encryption", "/v1/operator/keyring", `{"Key":"x"}`, 400, "invalid request"},
	}
	for _, tc := range cases {
		code, body := put(tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, body, tc.code, tc.reason)
		}
	}
}
