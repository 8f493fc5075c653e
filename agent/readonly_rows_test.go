package agent_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/config"
)

// TestConcurrentReadsLeaveStoreRowsAlone: on a server agent the HTTP API
// reads the state store in process, so replies point at rows the store
// owns. Many concurrent reads of an untagged service (whose nil tag lists
// the API answers as []) must not write those rows: under -race a handler
// that normalises a row in place is a data race, and a write into the
// store is how replicas came to differ before (issue 13).
func TestConcurrentReadsLeaveStoreRowsAlone(t *testing.T) {
	_, addrs := inProcessAgent(t, t.TempDir(), "rows", func(c *config.Config) { c.Dev = true })
	waitLeader(t, addrs.HTTP)
	base := "http://" + addrs.HTTP
	hc := &http.Client{Timeout: 5 * time.Second}
	body := `{"Node":"n1","Address":"127.0.0.1","Service":{"Service":"plain","Port":80},` +
		`"Check":{"CheckID":"c1","Name":"c1","Status":"passing","ServiceID":"plain"}}`
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/catalog/register", strings.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register: %s", resp.Status)
	}

	paths := []string{"/v1/catalog/service/plain", "/v1/health/service/plain", "/v1/health/checks/plain", "/v1/health/state/any"}
	const readers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := range readers {
		wg.Go(func() {
			for i := range rounds {
				p := paths[(r+i)%len(paths)]
				b, err := httpGet(hc, base+p)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", p, err)
					return
				}
				if strings.Contains(string(b), `Tags":null`) { // Consul answers [] for no tags
					errs <- fmt.Errorf("%s: a null tag list in %s", p, b)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
