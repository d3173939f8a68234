"""Wasm workflows deployed into the server, driven and observed through the
real Python client: the run suspends at its gate (no worker held), the gate
is resolved over HTTP, and the run finishes; SDK and wasm runs share the
runs list, events and state API."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from helpers import assert_gap_free, event_types, http, step_by_name, unique, wait_until

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "target/wasm-fixtures/wasm32-wasip2/release/report.wasm"
WAIT = 30.0


def _deploy(base_url: str, name: str) -> dict:
    if not REPORT.exists():
        pytest.fail(f"{REPORT} is missing: build the fixtures first (cargo build -p tidebase-fixtures)")
    req = urllib.request.Request(f"{base_url}/workflows/{name}", data=REPORT.read_bytes(), method="POST")
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read())["deployment"]


def _suspended_gate(tide, run_id):
    def find():
        detail = tide.runs.get(run_id)
        pending = [g for g in detail["gates"] if g["status"] == "pending"]
        if pending and detail["run"]["leaseOwner"] is None:
            return pending[0]
        return None

    return wait_until(find, WAIT, f"run {run_id} to suspend at its gate")


def test_wasm_run_suspends_at_gate_and_resumes_after_resolve(tide, base_url):
    name = unique("report")
    deployment = _deploy(base_url, name)
    assert deployment["digest"].startswith("sha256:")

    run = tide.runs.create(name, input={"topic": "tides"})
    gate = _suspended_gate(tide, run["id"])
    assert gate["name"] == "approve-report"

    status, _, _ = http(
        "POST",
        f"{base_url}/runs/{run['id']}/gates/{gate['id']}/resolve",
        {"token": gate["resolveToken"], "decision": "approved", "actor": "py"},
    )
    assert status == 200

    detail = wait_until(
        lambda: (d := tide.runs.get(run["id"]))["run"]["status"] == "completed" and d,
        WAIT,
        "the wasm run to complete",
    )
    assert detail["run"]["result"]["approved"] is True
    assert detail["run"]["result"]["approvedBy"] == "py"
    for step in ("plan", "fetch-sources", "write-report"):
        assert step_by_name(detail, step)["attempt"] == 1, f"{step} ran more than once"
    assert_gap_free(detail["events"], run["id"])
    types = event_types(detail)
    # Resuming after the gate continues the same attempt.
    assert (types.count("run.started"), types.count("run.resumed")) == (1, 1), types
    assert detail["run"]["attempt"] == 1
    assert "gate.resolved" in types and types[-1] == "run.completed"


def test_wasm_and_sdk_runs_share_the_api(tide, base_url):
    name = unique("report")
    _deploy(base_url, name)
    wasm_run = tide.runs.create(name, input={"topic": "shared"})

    def sdk_workflow(run, input):
        run.state.set({"phase": "sdk"})
        return run.step("only", lambda: 7)

    sdk_result = tide.run(unique("sdk"), sdk_workflow, input={})
    assert sdk_result == 7

    _suspended_gate(tide, wasm_run["id"])
    listed = {r["id"] for r in tide.runs.list()}
    assert wasm_run["id"] in listed
    versions = tide.runs.get(wasm_run["id"])["stateVersions"]
    assert versions and versions[-1]["value"].get("phase"), versions
    tide.runs.cancel(wasm_run["id"], reason="done here", actor="py")
    assert tide.runs.get(wasm_run["id"])["run"]["status"] == "cancelled"
