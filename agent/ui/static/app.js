// Cairn UI: token box, live updates by blocking query, KV writes.
// Hand-written, no dependencies. Every API call sends the session's
// X-Consul-Token; every write also sends X-Cairn-UI: 1 (the agent
// refuses browser writes without it).
"use strict";
(function () {
  var TOKEN_KEY = "cairn-token";
  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
  function headers(write) {
    var h = {};
    var t = token();
    if (t) h["X-Consul-Token"] = t;
    if (write) h["X-Cairn-UI"] = "1";
    return h;
  }
  function say(msg, bad) {
    var s = document.getElementById("status");
    if (!s) return;
    s.textContent = msg;
    s.className = bad ? "flash flash-bad" : "flash flash-ok";
  }

  // Replace main's content with a fresh server render of this page.
  function refresh() {
    return fetch(location.href, { headers: headers(false), credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (!fresh || !main) return;
        // Keep what the user typed (filter, KV forms) across the swap.
        var typed = {};
        Array.prototype.forEach.call(main.querySelectorAll("input[id], textarea[id], select[id]"), function (e) { typed[e.id] = e.value; });
        var focused = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : "";
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes).map(function (n) { return document.adoptNode(n); }));
        ["data-watch", "data-index"].forEach(function (a) {
          if (fresh.hasAttribute(a)) main.setAttribute(a, fresh.getAttribute(a)); else main.removeAttribute(a);
        });
        Object.keys(typed).forEach(function (id) {
          var e = document.getElementById(id);
          if (e && main.contains(e)) e.value = typed[id];
        });
        wire();
        var f = main.querySelector("input[data-filter]");
        if (f) f.dispatchEvent(new Event("input"));
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      });
  }

  // Follow the page's data: a blocking query on data-watch from
  // data-index; when the index moves, re-render main in place.
  var watching = false;
  function watch() {
    if (watching) return;
    watching = true;
    var main = document.getElementById("main");
    function loop(delay) {
      setTimeout(function () {
        var w = main.getAttribute("data-watch");
        if (!w) { watching = false; return; }
        var idx = main.getAttribute("data-index") || "0";
        var u = w + (w.indexOf("?") < 0 ? "?" : "&") + "index=" + encodeURIComponent(idx) + "&wait=60s";
        fetch(u, { headers: headers(false), credentials: "same-origin" })
          .then(function (r) {
            var n = r.headers.get("X-Consul-Index");
            if ((r.ok || r.status === 404) && n && n !== idx) {
              // A render whose index did not move would make the next
              // query return at once: pause instead of spinning.
              return refresh().then(function () { loop(main.getAttribute("data-index") === idx ? 1000 : 0); });
            }
            loop(r.ok || r.status === 404 ? 0 : 2000);
          })
          .catch(function () { loop(2000); });
      }, delay);
    }
    loop(0);
  }

  function kvURL(key, q) {
    var dc = document.getElementById("main").querySelector("[data-dc]");
    dc = dc ? dc.getAttribute("data-dc") : "";
    var u = "/v1/kv/" + key.split("/").map(encodeURIComponent).join("/") + "?" + q;
    if (dc) u += "&dc=" + encodeURIComponent(dc);
    return u;
  }
  function uiKV(key) {
    return "/ui/kv/" + key.split("/").map(encodeURIComponent).join("/") + location.search;
  }
  function write(method, url, body) {
    return fetch(url, { method: method, headers: headers(true), body: body, credentials: "same-origin" })
      .then(function (r) {
        return r.text().then(function (t) {
          if (!r.ok) throw new Error(r.status + " " + t.trim());
          return t.trim() === "true";
        });
      });
  }

  function wireKV() {
    var edit = document.getElementById("kv-edit");
    if (edit && !edit.dataset.wired) {
      edit.dataset.wired = "1";
      edit.hidden = false;
      edit.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var cas = edit.getAttribute("data-cas");
        var key = edit.getAttribute("data-key");
        write("PUT", kvURL(key, "cas=" + cas), edit.querySelector("textarea").value).then(function (ok) {
          if (!ok) { say("Not saved: " + key + " changed since this page loaded it (index " + cas + "). Reload to see the current value.", true); return; }
          return refresh().then(function () { say("Saved " + key + "."); });
        }).catch(function (e) { say("Save failed: " + e.message, true); });
      });
      document.getElementById("kv-delete").addEventListener("click", function () {
        var cas = edit.getAttribute("data-cas");
        var key = edit.getAttribute("data-key");
        write("DELETE", kvURL(key, "cas=" + cas)).then(function (ok) {
          if (!ok) { say("Not deleted: " + key + " changed since this page loaded it (index " + cas + "). Reload to see the current value.", true); return; }
          location.href = edit.getAttribute("data-parent");
        }).catch(function (e) { say("Delete failed: " + e.message, true); });
      });
    }
    var create = document.getElementById("kv-create");
    if (create && !create.dataset.wired) {
      create.dataset.wired = "1";
      create.hidden = false;
      create.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var key = create.getAttribute("data-prefix") + create.querySelector("input[name=key]").value;
        // cas=0: create only; an existing key is reported, not replaced.
        write("PUT", kvURL(key, "cas=0"), create.querySelector("textarea").value).then(function (ok) {
          if (!ok) { say("Not created: " + key + " already exists.", true); return; }
          location.href = uiKV(key);
        }).catch(function (e) { say("Create failed: " + e.message, true); });
      });
    }
  }

  // Live filter of a table's rows by their data-search text.
  function wireFilter() {
    var f = document.querySelector("input[data-filter]");
    if (!f || f.dataset.wired) return;
    f.dataset.wired = "1";
    function apply() {
      var q = f.value.trim().toLowerCase();
      var rows = document.querySelectorAll(f.getAttribute("data-filter") + " tbody tr[data-search]");
      Array.prototype.forEach.call(rows, function (r) {
        r.hidden = q !== "" && r.getAttribute("data-search").toLowerCase().indexOf(q) < 0;
      });
    }
    f.addEventListener("input", apply);
  }

  function wireToken() {
    var form = document.getElementById("token-form");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.hidden = false;
    var input = document.getElementById("token");
    input.value = token();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      try {
        if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value); else sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) { say("Cannot store the token: " + e.message, true); return; }
      refresh().then(function () { say(input.value ? "Token saved for this session." : "Token cleared."); });
    });
  }

  function wire() { wireKV(); wireFilter(); wireToken(); watch(); }

  document.addEventListener("DOMContentLoaded", function () {
    wire();
    // Pages were rendered without the token (a navigation cannot send
    // headers): re-render once with it.
    if (token()) refresh();
  });
})();
