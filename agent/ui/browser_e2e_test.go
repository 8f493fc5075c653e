package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// evil is an HTML/script payload used as a service name, tag, meta value
// and KV value: it must render as text and never run.
const evil = `<img src=x onerror=window.pwned=1>`

// chromiumPath is Debian's chromium (installed by .ci/run), or "".
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one chromium process shared by every subtest (each subtest
// opens its own tab), with the console messages of all tabs.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	msgs []string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromiumPath()
	if bin == "" {
		t.Skip("no chromium binary on PATH (apt-get install chromium; .ci/run installs it): browser tests skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // chromium runs as root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1440, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// Start the browser now, on a context without a timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return &browser{ctx: bctx}
}

// tab opens a new tab recording its console errors, log entries and
// exceptions; it closes when the subtest ends.
func (b *browser) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			msg = fmt.Sprintf("log %s %s: %s (%s)", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		b.mu.Lock()
		b.msgs = append(b.msgs, msg)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// messages returns the console messages so far that contain substr.
func (b *browser) messages(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if strings.Contains(m, substr) {
			out = append(out, m)
		}
	}
	return out
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor evaluates a JS predicate until it is true; an evaluation cut
// short by a navigation is retried on the new page.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what, expr string) {
	t.Helper()
	err := testutil.Wait(ctx, timeout, func() error {
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("false")
		}
		return nil
	})
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v (within %v)\npage text:\n%s", what, err, timeout, body)
	}
}

type shots struct {
	dir string
}

func (s *shots) save(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.CSS("footer"))); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(s.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserE2E drives the UI of a real `cairn agent --dev` in Debian's
// chromium (issue 18), one browser for all subtests.
func TestBrowserE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent and a browser")
	}
	b := startBrowser(t)
	p := agenttest.StartAgent(t, agenttest.Binary(t), "uidev", "--dev")
	c, err := api.NewClient(&api.Config{Address: p.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "leader", func() error {
		l, err := c.Status().Leader()
		if err == nil && l == "" {
			err = fmt.Errorf("no leader yet")
		}
		return err
	})
	base := "http://" + p.HTTPAddr()
	sh := &shots{dir: t.ArtifactDir()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots in %s (go test -artifacts keeps them)", sh.dir)
		}
	})

	// web: two instances, one passing and one critical; db: warning.
	ag := c.Agent()
	for _, s := range []*api.AgentServiceRegistration{
		{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1"}, Check: &api.AgentServiceCheck{TTL: "10m", CheckID: "web-1-ttl"}},
		{ID: "web-2", Name: "web", Port: 8081, Tags: []string{"v1"}, Check: &api.AgentServiceCheck{TTL: "10m", CheckID: "web-2-ttl"}},
		{ID: "db", Name: "db", Port: 5432, Check: &api.AgentServiceCheck{TTL: "10m", CheckID: "db-ttl"}},
		{ID: "evil", Name: evil, Port: 1, Tags: []string{evil}, Meta: map[string]string{"m": evil}},
	} {
		if err := ag.ServiceRegister(s); err != nil {
			t.Fatalf("register %s: %v", s.ID, err)
		}
	}
	must(t, ag.UpdateTTL("web-1-ttl", "all good", api.HealthPassing))
	must(t, ag.UpdateTTL("web-2-ttl", "connection refused", api.HealthCritical))
	must(t, ag.UpdateTTL("db-ttl", "replica lag", api.HealthWarning))
	testutil.Eventually(t, 10*time.Second, "catalog synced", func() error {
		for svc, n := range map[string]int{"web": 2, "db": 1, evil: 1} {
			es, _, err := c.Health().Service(svc, "", false, nil)
			if err != nil {
				return err
			}
			if len(es) != n {
				return fmt.Errorf("%s: %d instances", svc, len(es))
			}
			for _, e := range es {
				for _, ch := range e.Checks {
					if ch.ServiceID == "web-1" && ch.Status != api.HealthPassing || ch.ServiceID == "db" && ch.Status != api.HealthWarning {
						return fmt.Errorf("%s still %s", ch.CheckID, ch.Status)
					}
				}
			}
		}
		return nil
	})

	t.Run("Services", func(t *testing.T) {
		ctx := b.tab(t)
		do(t, ctx, "open services", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#token-form`)))
		if loc := eval[string](t, ctx, `location.pathname`); loc != "/ui/services" {
			t.Errorf("/ redirected to %s, want /ui/services", loc)
		}
		// Each instance counts its own check and the node's serfHealth.
		for svc, want := range map[string]string{"web": "2 3 0 1 critical", "db": "1 1 1 0 warning", "consul": "1 1 0 0 passing"} {
			got := eval[string](t, ctx, fmt.Sprintf(`(function(){var r=document.querySelector('tr[data-service=%q]'); if(!r) return "missing";
				return ["instances","passing","warning","critical"].map(function(c){return r.querySelector('[data-col='+c+']').textContent}).join(" ")+" "+r.querySelector('.st').textContent})()`, svc))
			if got != want {
				t.Errorf("%s row: %q, want %q (instances passing warning critical health)", svc, got, want)
			}
		}
		// Sorting by critical puts web first; filtering keeps db only.
		do(t, ctx, "sort", chromedp.Navigate(base+"/ui/services?sort=critical"))
		if first := eval[string](t, ctx, `document.querySelector('#services tbody tr').dataset.service`); first != "web" {
			t.Errorf("sorted by critical, first row %q, want web", first)
		}
		do(t, ctx, "filter", chromedp.Navigate(base+"/ui/services"), chromedp.WaitVisible(chromedp.CSS(`#token-form`)),
			chromedp.SendKeys(chromedp.ID("filter"), "db"))
		waitFor(t, ctx, 2*time.Second, "live filter", `Array.from(document.querySelectorAll('#services tbody tr')).filter(function(r){return !r.hidden}).map(function(r){return r.dataset.service}).join() === "db"`)
		do(t, ctx, "reset", chromedp.Navigate(base+"/ui/services"))
		sh.save(t, ctx, "services")
	})

	t.Run("LiveUpdate", func(t *testing.T) {
		ctx := b.tab(t)
		do(t, ctx, "open web", chromedp.Navigate(base+"/ui/services/web"), chromedp.WaitVisible(chromedp.CSS(`[data-check="web-1-ttl"]`)))
		sel := `document.querySelector('[data-instance="web-1"] [data-check="web-1-ttl"] [data-status]')`
		if st := eval[string](t, ctx, sel+`.textContent`); st != "passing" {
			t.Fatalf("web-1 check shows %q before the change, want passing", st)
		}
		sh.save(t, ctx, "service-detail")
		eval[chromedp.Void](t, ctx, `window.notReloaded = true`)
		start := time.Now()
		must(t, ag.UpdateTTL("web-1-ttl", "disk full", api.HealthCritical))
		waitFor(t, ctx, 2*time.Second, "web-1 shown critical without navigation",
			sel+`.textContent === "critical" && `+sel+`.className.indexOf("st-critical") >= 0 && window.notReloaded === true`)
		t.Logf("critical shown %v after the API call", time.Since(start).Round(time.Millisecond))
		if out := eval[string](t, ctx, `document.querySelector('[data-check="web-1-ttl"] .output').textContent`); out != "disk full" {
			t.Errorf("output %q, want the check's new output", out)
		}
	})

	t.Run("KV", func(t *testing.T) {
		ctx := b.tab(t)
		kv := c.KV()
		value := func(k string) (string, bool) {
			t.Helper()
			e, _, err := kv.Get(k, nil)
			if err != nil {
				t.Fatalf("kv get %s: %v", k, err)
			}
			if e == nil {
				return "", false
			}
			return string(e.Value), true
		}
		// Create under a folder.
		_, err := kv.Put(&api.KVPair{Key: "app/readme", Value: []byte("folder marker")}, nil)
		must(t, err)
		do(t, ctx, "create", chromedp.Navigate(base+"/ui/kv/app/"), chromedp.WaitVisible(chromedp.ID("kv-create")),
			chromedp.SendKeys(chromedp.ID("kv-new-key"), "config"),
			chromedp.SetValue(chromedp.ID("kv-new-value"), "v1"),
			chromedp.Click(chromedp.CSS(`#kv-create button[type=submit]`)))
		waitFor(t, ctx, 5*time.Second, "key page after create", `location.pathname === "/ui/kv/app/config" && !!document.getElementById("kv-edit")`)
		if v, ok := value("app/config"); !ok || v != "v1" {
			t.Fatalf("after create: %q %v, want v1", v, ok)
		}
		sh.save(t, ctx, "kv")
		// Edit.
		do(t, ctx, "edit", chromedp.WaitVisible(chromedp.ID("kv-edit")), chromedp.SetValue(chromedp.ID("kv-value"), "v2"),
			chromedp.Click(chromedp.CSS(`#kv-edit button[type=submit]`)))
		waitFor(t, ctx, 5*time.Second, "saved", `document.getElementById("status").textContent.indexOf("Saved") === 0`)
		if v, _ := value("app/config"); v != "v2" {
			t.Fatalf("after edit: %q, want v2", v)
		}
		// A concurrent change between load and save is reported, not overwritten.
		do(t, ctx, "reload", chromedp.Navigate(base+"/ui/kv/app/config"), chromedp.WaitVisible(chromedp.ID("kv-edit")))
		_, err = kv.Put(&api.KVPair{Key: "app/config", Value: []byte("someone else")}, nil)
		must(t, err)
		do(t, ctx, "stale edit", chromedp.SetValue(chromedp.ID("kv-value"), "mine"), chromedp.Click(chromedp.CSS(`#kv-edit button[type=submit]`)))
		waitFor(t, ctx, 5*time.Second, "conflict reported", `document.getElementById("status").textContent.indexOf("Not saved: app/config changed since this page loaded it") === 0`)
		if v, _ := value("app/config"); v != "someone else" {
			t.Fatalf("after a conflicting edit: %q, want the other writer's value kept", v)
		}
		// Delete (after a reload, with the current index).
		do(t, ctx, "delete", chromedp.Navigate(base+"/ui/kv/app/config"), chromedp.WaitVisible(chromedp.ID("kv-delete")),
			chromedp.Click(chromedp.ID("kv-delete")))
		waitFor(t, ctx, 5*time.Second, "back at the folder", `location.pathname === "/ui/kv/app/"`)
		if _, ok := value("app/config"); ok {
			t.Fatal("key still exists after delete")
		}
		// The folder follows its keys live and keeps what the user typed.
		do(t, ctx, "folder", chromedp.Navigate(base+"/ui/kv/app/"), chromedp.WaitVisible(chromedp.ID("kv-create")),
			chromedp.SendKeys(chromedp.ID("kv-new-key"), "half-typed"))
		_, err = kv.Put(&api.KVPair{Key: "app/from-elsewhere", Value: []byte("x")}, nil)
		must(t, err)
		waitFor(t, ctx, 2*time.Second, "new key listed without reload", `!!document.querySelector('tr[data-key="app/from-elsewhere"]')`)
		if got := eval[string](t, ctx, `document.getElementById("kv-new-key").value`); got != "half-typed" {
			t.Errorf("typed key name after a live refresh: %q, want half-typed", got)
		}
		// Binary values show as hex.
		_, err = kv.Put(&api.KVPair{Key: "app/bin", Value: []byte{0xff, 0xfe, 0x00, 'x'}}, nil)
		must(t, err)
		do(t, ctx, "binary", chromedp.Navigate(base+"/ui/kv/app/bin"))
		if txt := eval[string](t, ctx, `document.querySelector("pre.hex").textContent`); !strings.Contains(txt, "ff fe 00 78") {
			t.Errorf("binary value shown as %q, want hex", txt)
		}
	})

	t.Run("Escaping", func(t *testing.T) {
		ctx := b.tab(t)
		_, err := c.KV().Put(&api.KVPair{Key: "evil", Value: []byte(evil)}, nil)
		must(t, err)
		for _, page := range []string{"/ui/services", "/ui/services/" + urlPath(evil), "/ui/nodes/uidev", "/ui/kv/evil"} {
			do(t, ctx, page, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS(`#token-form`)))
			if got := eval[string](t, ctx, `typeof window.pwned`); got != "undefined" {
				t.Errorf("%s: window.pwned is %s: the payload ran", page, got)
			}
			if n := eval[int](t, ctx, `document.querySelectorAll("main img").length`); n != 0 {
				t.Errorf("%s: %d <img> elements in main", page, n)
			}
			text := eval[string](t, ctx, `document.querySelector("main").innerText + " " + Array.from(document.querySelectorAll("textarea")).map(function(x){return x.value}).join(" ")`)
			if !strings.Contains(text, evil) {
				t.Errorf("%s: the payload is not shown as text:\n%s", page, text)
			}
		}
		if v := b.messages("Content Security Policy"); len(v) > 0 {
			t.Errorf("CSP violations from the UI's own pages: %q", v)
		}
		if v := b.messages("exception"); len(v) > 0 {
			t.Errorf("JS exceptions: %q", v)
		}
		// Control: an inline script injected now is blocked and reported,
		// so the check above can see a violation.
		eval[chromedp.Void](t, ctx, `(function(){var s=document.createElement("script"); s.textContent="window.inlineRan=1"; document.body.appendChild(s)})()`)
		if got := eval[string](t, ctx, `typeof window.inlineRan`); got != "undefined" {
			t.Errorf("an inline script ran: the CSP does not block it")
		}
		testutil.Eventually(t, 5*time.Second, "CSP violation reported", func() error {
			if len(b.messages("Content Security Policy")) == 0 {
				return fmt.Errorf("no CSP message in the console")
			}
			return nil
		})
	})

	t.Run("Resolve", func(t *testing.T) {
		ctx := b.tab(t)
		for _, tc := range []struct{ qtype, want string }{
			{"A", "db.service.consul.\t0\tIN\tA\t127.0.0.1"},
			{"SRV", "\tIN\tSRV\t1 1 5432 "},
		} {
			do(t, ctx, "resolve "+tc.qtype, chromedp.Navigate(base+"/ui/agent"), chromedp.WaitVisible(chromedp.ID("resolve-name")),
				chromedp.SendKeys(chromedp.ID("resolve-name"), "db.service.consul"),
				chromedp.SetValue(chromedp.ID("resolve-type"), tc.qtype),
				chromedp.Click(chromedp.CSS(`#resolve button`)))
			waitFor(t, ctx, 5*time.Second, "result", `!!document.getElementById("resolve-result")`)
			got := eval[string](t, ctx, `Array.from(document.querySelectorAll("#resolve-result code")).map(function(c){return c.textContent}).join("\n")`)
			if !strings.Contains(got, tc.want) {
				t.Errorf("resolve db %s: records\n%s\nwant one containing %q", tc.qtype, got, tc.want)
			}
		}
		sh.save(t, ctx, "agent")
	})

	t.Run("CrossSiteWrite", func(t *testing.T) {
		ctx := b.tab(t)
		// From the UI's own page: a write without the header is refused,
		// the same write with it goes through.
		do(t, ctx, "open", chromedp.Navigate(base+"/ui/kv/"))
		if st := eval[int](t, ctx, `fetch("/v1/kv/xs-plain", {method: "PUT", body: "1"}).then(function(r){return r.status})`); st != http.StatusForbidden {
			t.Errorf("same-origin write without X-Cairn-UI: %d, want 403", st)
		}
		if st := eval[int](t, ctx, `fetch("/v1/kv/xs-ui", {method: "PUT", body: "1", headers: {"X-Cairn-UI": "1"}}).then(function(r){return r.status})`); st != http.StatusOK {
			t.Errorf("same-origin write with X-Cairn-UI: %d, want 200", st)
		}
		// From another site: a form posting to the agent.
		evilSite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<!DOCTYPE html><title>evil</title><form id=f method=post action="`+base+`/v1/kv/xs-form"><input name=a value=b></form><script>document.getElementById("f").submit()</script>`)
		}))
		defer evilSite.Close()
		site := strings.Replace(evilSite.URL, "127.0.0.1", "localhost", 1) // another site, still loopback
		do(t, ctx, "evil page", chromedp.Navigate(site))
		waitFor(t, ctx, 5*time.Second, "form landed on the agent", `location.href.indexOf("`+base+`") === 0 && document.body && document.body.innerText.indexOf("Cross-site write refused") >= 0`)
		for k, want := range map[string]bool{"xs-plain": false, "xs-ui": true, "xs-form": false} {
			e, _, err := c.KV().Get(k, nil)
			must(t, err)
			if (e != nil) != want {
				t.Errorf("key %s exists=%v, want %v", k, e != nil, want)
			}
		}
	})

	t.Run("Cluster", func(t *testing.T) {
		ctx := b.tab(t)
		do(t, ctx, "cluster", chromedp.Navigate(base+"/ui/cluster"), chromedp.WaitVisible(chromedp.ID("leader")))
		text := eval[string](t, ctx, `document.querySelector("main").innerText`)
		for _, want := range []string{"Leader: " + p.RPCAddr(), "uidev\t" + p.SerfAddr() + "\t", "alive", "uidev.dc1", "dc1"} {
			if !strings.Contains(text, want) {
				t.Errorf("cluster page lacks %q:\n%s", want, text)
			}
		}
		sh.save(t, ctx, "cluster")
	})

	t.Run("JavaScriptOff", func(t *testing.T) {
		ctx := b.tab(t)
		do(t, ctx, "no js", chromedp.Evaluate[chromedp.Void](`0`))
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		must(t, err)
		do(t, ctx, "services", chromedp.Navigate(base+"/ui/services/web"))
		// With JS off Evaluate still runs (DevTools is exempt); the page's
		// own script did not: the token box stays hidden.
		if hidden := eval[bool](t, ctx, `document.getElementById("token-form").hidden`); !hidden {
			t.Errorf("token form visible with scripts disabled: the page script ran")
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("[data-check]").length`); n < 4 {
			t.Errorf("service page with JS off shows %d checks, want the server-rendered rows", n)
		}
	})

	t.Run("TokenAndDatacenter", func(t *testing.T) {
		ctx := b.tab(t)
		do(t, ctx, "open", chromedp.Navigate(base+"/ui/services"), chromedp.WaitVisible(chromedp.ID("token-form")))
		// Record the headers of the page's own fetch calls.
		eval[chromedp.Void](t, ctx, `(function(){window.seen=[]; var f=window.fetch; window.fetch=function(u,o){window.seen.push({u:String(u),h:(o&&o.headers)||{}}); return f.apply(this,arguments)}})()`)
		do(t, ctx, "save token", chromedp.SendKeys(chromedp.ID("token"), "s3cr3t-token"), chromedp.Click(chromedp.CSS(`#token-form button`)))
		waitFor(t, ctx, 5*time.Second, "token saved", `document.getElementById("status").textContent === "Token saved for this session."`)
		if n := eval[int](t, ctx, `window.seen.filter(function(x){return x.h["X-Consul-Token"] === "s3cr3t-token"}).length`); n == 0 {
			t.Errorf("no fetch carried X-Consul-Token after saving the token: %s", eval[string](t, ctx, `JSON.stringify(window.seen)`))
		}
		if got := eval[string](t, ctx, `sessionStorage.getItem("cairn-token")`); got != "s3cr3t-token" {
			t.Errorf("session storage holds %q", got)
		}
		// The datacenter switcher keeps ?dc= on every link and on the watch.
		do(t, ctx, "switch dc", chromedp.SetValue(chromedp.ID("dc"), "dc1"), chromedp.Click(chromedp.CSS(`form.dc button`)))
		waitFor(t, ctx, 5*time.Second, "dc in the URL", `location.search === "?dc=dc1" && !!document.getElementById("main")`)
		if href := eval[string](t, ctx, `document.querySelector('nav a[href*="/ui/nodes"]').getAttribute("href")`); href != "/ui/nodes?dc=dc1" {
			t.Errorf("nav link %q, want /ui/nodes?dc=dc1", href)
		}
		if w := eval[string](t, ctx, `document.getElementById("main").dataset.watch`); w != "/v1/health/state/any?dc=dc1" {
			t.Errorf("watch %q, want it in dc1", w)
		}
		eval[chromedp.Void](t, ctx, `sessionStorage.removeItem("cairn-token")`)
	})

	t.Run("Layout", func(t *testing.T) {
		ctx := b.tab(t)
		for _, w := range []int64{375, 1440} {
			do(t, ctx, "viewport", chromedp.EmulateViewport(w, 800))
			for _, page := range []string{"/ui/services", "/ui/services/web", "/ui/nodes", "/ui/nodes/uidev", "/ui/kv/app/", "/ui/kv/app/bin", "/ui/cluster", "/ui/agent"} {
				do(t, ctx, page, chromedp.Navigate(base+page))
				if sw := eval[int64](t, ctx, `document.documentElement.scrollWidth`); sw > w {
					t.Errorf("%s at %d px: page is %d px wide (horizontal scroll)", page, w, sw)
				}
				// Accessibility basics: a title, one h1, a label for every input.
				if got := eval[string](t, ctx, `document.title + "|" + document.querySelectorAll("h1").length + "|" +
					Array.from(document.querySelectorAll("input:not([type=hidden]),select,textarea")).filter(function(e){return !e.labels || e.labels.length === 0}).map(function(e){return e.id || e.name}).join()`); !strings.HasSuffix(got, "|1|") || strings.HasPrefix(got, "|") {
					t.Errorf("%s: title|h1 count|unlabelled inputs = %q", page, got)
				}
			}
			do(t, ctx, "services", chromedp.Navigate(base+"/ui/services"))
			sh.save(t, ctx, fmt.Sprintf("services-%d", w))
		}
	})

	t.Run("Budget", func(t *testing.T) {
		for i := range 50 {
			must(t, ag.ServiceRegister(&api.AgentServiceRegistration{ID: fmt.Sprintf("svc-%02d", i), Name: fmt.Sprintf("service-%02d", i),
				Port: 1000 + i, Tags: []string{"primary", "v2"}, Meta: map[string]string{"team": "payments"},
				Check: &api.AgentServiceCheck{TTL: "10m"}}))
		}
		testutil.Eventually(t, 10*time.Second, "50 services in the catalog", func() error {
			s, _, err := c.Catalog().Services(nil)
			if err == nil && len(s) < 54 {
				err = fmt.Errorf("%d services", len(s))
			}
			return err
		})
		size := func(path string) int {
			t.Helper()
			resp, err := http.Get(base + path)
			must(t, err)
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			must(t, err)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
			return int(n)
		}
		static := size("/ui/static/app.js") + size("/ui/static/app.css")
		for _, page := range []string{"/ui/services", "/ui/nodes", "/ui/nodes/uidev", "/ui/cluster", "/ui/agent", "/ui/kv/"} {
			total := size(page) + static
			t.Logf("%s with 54 services: %d bytes with its JS and CSS", page, total)
			if total > 100<<10 {
				t.Errorf("%s with 50 services transfers %d bytes, budget 100 KiB", page, total)
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func urlPath(s string) string {
	return strings.NewReplacer("%", "%25", "<", "%3C", ">", "%3E", " ", "%20", "=", "%3D").Replace(s)
}
