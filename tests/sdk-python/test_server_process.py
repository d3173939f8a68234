"""The server process itself: /health, clean shutdown on SIGTERM (also with an
open SSE subscriber), restart on an already-migrated database."""

from __future__ import annotations

import socket

from tidebase import Tidebase

from helpers import http, unique


def test_health(base_url):
    status, body, headers = http("GET", base_url + "/health")
    assert status == 200 and body == {"ok": True}
    assert headers.get("content-type", "").split(";")[0] == "application/json"


def test_sigterm_exits_cleanly_and_restart_keeps_data(start_server):
    srv = start_server("lifecycle")
    tide = Tidebase(url=srv.url)
    run = tide.runs.create(unique("persisted"), input={"keep": True})
    problem = srv.stop()
    assert problem is None, problem + "\n" + srv.log_tail()

    # Same database, new process: boots (migrations already applied) and still has the run.
    from conftest import Server

    again = Server("lifecycle-restart", srv.database_url, srv.log_path.parent, srv.extra_env)
    again.start()
    try:
        detail = Tidebase(url=again.url).runs.get(run["id"])
        assert detail["run"]["input"] == {"keep": True}
    finally:
        problem = again.stop()
    assert problem is None, problem + "\n" + again.log_tail()


def test_sigterm_with_open_sse_subscriber_exits_cleanly(start_server):
    """Robustness: an idle SSE connection (the stream never ends server-side)
    must not keep the process alive after SIGTERM."""
    srv = start_server("lifecycle-sse")
    tide = Tidebase(url=srv.url)
    run = tide.runs.create(unique("sse-open"))
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(
            f"GET /runs/{run['id']}/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        problem = srv.stop()
    finally:
        sock.close()
    assert problem is None, problem + "\n" + srv.log_tail()
