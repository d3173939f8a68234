"""The recovery flow of semantics.md §15.2–15.3 with the real client: the
run's recovery webhook receiver resumes the run with the SDK (Tidebase.run
with run_id=…: completed steps replay, the failed one re-executes, the run
completes) before it answers, and the fail call returns only after that, so
the run is already `completed` when fail returns."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tidebase import Tidebase

from helpers import event_types, http, step_by_name, unique


class ResumingReceiver:
    """A recovery webhook endpoint that, while `resume` is set, resumes the
    run it is told about with `workflow` before answering 200."""

    def __init__(self, base_url: str, name: str, workflow):
        receiver = self
        self.calls: list = []
        self.outcomes: list = []
        self.resume = True
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with receiver.lock:
                    receiver.calls.append(body)
                if receiver.resume:
                    try:
                        result = Tidebase(url=base_url).run(name, workflow, run_id=body["runId"])
                        outcome = ("resumed", result)
                    except Exception as e:  # noqa: BLE001 — reported to the test
                        outcome = ("raised", repr(e))
                    with receiver.lock:
                        receiver.outcomes.append(outcome)
                reply = b'{"resumed":true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/recover"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Flaky(Exception):
    pass


def _workflow(counts: dict, failing_attempts: int):
    """`fetch` always succeeds; `publish` fails its first `failing_attempts` executions."""

    def wf(run, input):
        page = run.step("fetch", lambda: counts.__setitem__("fetch", counts["fetch"] + 1) or {"page": 1})

        def publish():
            counts["publish"] += 1
            if counts["publish"] <= failing_attempts:
                raise Flaky(f"publish attempt {counts['publish']} failed")
            return {"published": page}

        return run.step("publish", publish)

    return wf


@pytest.fixture
def resuming(base_url):
    made = []

    def make(name, workflow):
        receiver = ResumingReceiver(base_url, name, workflow)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def _assert_resumed(tide, run_id: str, counts: dict, receiver) -> None:
    detail = tide.runs.get(run_id)
    assert detail["run"]["status"] == "completed", detail["run"]
    assert detail["run"]["result"] == {"published": {"page": 1}}
    assert counts["fetch"] == 1, "the completed step replayed, it did not re-execute"
    assert step_by_name(detail, "fetch")["attempt"] == 1
    (attempt, *_) = detail["recoveryAttempts"]
    assert (attempt["reason"], attempt["status"], attempt["httpStatus"]) == ("run_failed", "delivered", 200)
    assert attempt["responseBody"] == '{"resumed":true}'
    assert receiver.outcomes[-1] == ("resumed", {"published": {"page": 1}})
    kinds = event_types(detail)
    assert kinds[-6:] == [
        "recovery.started",
        "run.started",
        "step.started",
        "step.completed",
        "run.completed",
        "recovery.delivered",
    ], kinds


def _first_run(tide, name, wf, receiver) -> str:
    """Run `wf` with the SDK until `publish` fails; returns the run id."""
    seen = {}

    def first(run, input):
        seen["run_id"] = run.run_id
        return wf(run, input)

    # run() posts fail and re-raises once fail returned.
    with pytest.raises(Flaky):
        tide.run(name, first, recovery_webhook=receiver.url)
    return seen["run_id"]


def test_sdk_fail_returns_after_the_handler_resumed_the_run(tide, resuming):
    name = unique("recover-sdk")
    counts = {"fetch": 0, "publish": 0}
    wf = _workflow(counts, failing_attempts=1)
    receiver = resuming(name, wf)

    run_id = _first_run(tide, name, wf, receiver)
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert (call["type"], call["runId"], call["reason"]) == ("run.resume", run_id, "run_failed")
    assert counts["publish"] == 2, "the failed step re-executed in the handler"
    _assert_resumed(tide, run_id, counts, receiver)


def test_raw_fail_returns_after_the_handler_resumed_the_run(tide, base_url, resuming):
    name = unique("recover-raw")
    counts = {"fetch": 0, "publish": 0}
    wf = _workflow(counts, failing_attempts=1)
    receiver = resuming(name, wf)
    receiver.resume = False  # the first failure is only acknowledged
    run_id = _first_run(tide, name, wf, receiver)
    assert tide.runs.get(run_id)["run"]["status"] == "failed"
    assert receiver.outcomes == []

    # Failed again through the API: this time the handler resumes the run.
    receiver.resume = True
    status, body, _ = http("POST", f"{base_url}/runs/{run_id}/fail", {"error": {"message": "operator retry"}}, timeout=60)
    assert status == 200, body
    assert body["run"]["status"] == "failed", "the response is the run as of the fail update"
    assert body["requeued"] is False
    assert len(receiver.calls) == 2
    _assert_resumed(tide, run_id, counts, receiver)
