"""Small, dependency-free helpers shared by the SDK compatibility tests."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import Any, Callable, Optional
from urllib import error as urlerror
from urllib import request as urlrequest

import pytest

SDK_VERSION = metadata.version("tidebase")

# v0.6 session runs (runs.attach, heartbeats, run.gates) exist from 0.6 on.
needs_sessions = pytest.mark.skipif(
    tuple(int(p) for p in SDK_VERSION.split(".")[:2]) < (0, 6),
    reason=f"tidebase {SDK_VERSION} has no v0.6 session API (runs.attach, heartbeat, gates.begin)",
)


def unique(prefix: str) -> str:
    """A workflow name no other test (or earlier session) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stable_hash(value: Any) -> str:
    """Lowercase hex SHA-256 of the stable JSON of `value` (python-sdk-calls.md §5),
    computed independently of the SDK."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns a truthy value; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 — remembered for the failure message
            last_error = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def http(method: str, url: str, body: Any = None, headers: Optional[dict] = None, timeout: float = 15.0):
    """Raw HTTP call with the stdlib. Returns (status, parsed JSON or text, headers)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    hdrs = {"content-type": "application/json"}
    hdrs.update(headers or {})
    req = urlrequest.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urlrequest.urlopen(req, timeout=timeout) as resp:
            status, raw, rh = resp.status, resp.read(), resp.headers
    except urlerror.HTTPError as e:
        status, raw, rh = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), rh
    except ValueError:
        return status, text, rh


def event_types(detail: dict) -> list:
    return [e["type"] for e in detail["events"]]


def events_of(detail: dict, type_: str) -> list:
    return [e for e in detail["events"] if e["type"] == type_]


def assert_gap_free(events: list, run_id: Optional[str] = None) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"event seq not gap-free 1..n: {seqs}"
    if run_id is not None:
        assert all(e["runId"] == run_id for e in events), "event with foreign runId"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), f"event ids not increasing: {ids}"


def step_by_name(detail: dict, name: str) -> dict:
    matches = [s for s in detail["steps"] if s["name"] == name]
    assert len(matches) == 1, f"expected exactly one step {name!r}, got {len(matches)}: {[s['name'] for s in detail['steps']]}"
    return matches[0]


class Captured:
    """Result holder for a function run in a background thread."""

    def __init__(self):
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()


def in_thread(fn: Callable[[], Any], name: str = "tb-test-worker") -> tuple:
    cap = Captured()

    def target():
        try:
            cap.value = fn()
        except BaseException as e:  # noqa: BLE001 — handed to the test
            cap.error = e
        finally:
            cap.done.set()

    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t, cap


def join(cap: Captured, timeout: float, what: str) -> Any:
    if not cap.done.wait(timeout):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return cap


class WebhookReceiver:
    """A tiny local HTTP server that records every POST it receives and
    answers 200 {"accepted": true} (or a configured status)."""

    def __init__(self, status: int = 200, body: bytes = b'{"accepted":true}'):
        receiver = self
        self.requests: list = []
        self.lock = threading.Lock()
        self.status = status
        self.body = body

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "raw": raw}
                    )
                self.send_response(receiver.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args):  # silence
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list:
        with self.lock:
            return [json.loads(r["raw"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
