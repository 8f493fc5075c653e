#!/usr/bin/python3
"""Smoke test of a cairn agent with Debian's python3-consul (consul 0.7.x).

Usage: smoke.py <http port>. Prints one "ok <step>" line per step and
exits non-zero (with the reason on stderr) at the first failure. Every
wait is bounded.
"""
import sys
import time

import consul


def wait_for(what, cond, timeout=10.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception as e:  # noqa: BLE001 - report the last error
            last = e
        time.sleep(0.1)
    raise SystemExit("timed out waiting for %s (last error: %r)" % (what, last))


def agent_put(c, legacy_call, path, params=None):
    """Runs one of python-consul 0.7.1's agent write calls that it sends as
    GET (ttl_pass/fail/warn, service.deregister). Consul >= 1.0 only accepts
    PUT there (405 on GET) and so does cairn; when the legacy GET is refused,
    send the same request as PUT through the library's own HTTP client."""
    if legacy_call():
        return True
    print("note: python-consul sent GET %s, refused as by Consul >= 1.0; retrying as PUT" % path)
    return c.http.put(consul.base.CB.bool(), path, params=params)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: smoke.py <http port>")
    c = consul.Consul(host="127.0.0.1", port=int(sys.argv[1]))

    wait_for("a leader", lambda: c.status.leader() not in (None, ""))
    print("ok leader", c.status.leader())

    # Service with a TTL check: critical until passed.
    assert c.agent.service.register(
        "pysvc", service_id="pysvc1", port=9090, tags=["py"],
        check=consul.Check.ttl("30s")), "register returned false"
    assert "pysvc1" in c.agent.services(), c.agent.services()
    print("ok register")

    _, nodes = c.health.service("pysvc", passing=True)
    assert nodes == [], "passing before TTL pass: %r" % nodes
    assert agent_put(c, lambda: c.agent.check.ttl_pass("service:pysvc1", notes="fine"),
                     "/v1/agent/check/pass/service:pysvc1", {"note": "fine"})
    print("ok ttl_pass")

    def passing():
        _, nodes = c.health.service("pysvc", passing=True)
        return len(nodes) == 1 and nodes[0]["Service"]["ID"] == "pysvc1" \
            and nodes[0]["Service"]["Port"] == 9090
    wait_for("pysvc passing", passing)
    print("ok health.service passing")

    # KV.
    assert c.kv.put("py/greeting", "hello", flags=3) is True
    _, data = c.kv.get("py/greeting")
    assert data is not None and data["Value"] == b"hello" and data["Flags"] == 3, data
    assert c.kv.put("py/greeting", "lost", cas=data["ModifyIndex"] - 1) is False
    _, data2 = c.kv.get("py/greeting")
    assert data2["Value"] == b"hello", data2
    _, missing = c.kv.get("py/nothing")
    assert missing is None, missing
    print("ok kv put/get")

    assert c.kv.delete("py/greeting") is True
    _, gone = c.kv.get("py/greeting")
    assert gone is None, gone
    print("ok kv delete")

    assert agent_put(c, lambda: c.agent.service.deregister("pysvc1"),
                     "/v1/agent/service/deregister/pysvc1")
    wait_for("pysvc gone", lambda: c.health.service("pysvc")[1] == [])
    print("ok deregister")
    print("PASS")


if __name__ == "__main__":
    main()
