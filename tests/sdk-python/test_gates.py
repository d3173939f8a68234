"""run.gate(): waiting, exactly-once resolution over HTTP, replay on resume,
cancellation while waiting."""

from __future__ import annotations

import queue

import pytest
from tidebase import RunCancelled

from helpers import assert_gap_free, event_types, events_of, http, in_thread, join, unique, wait_until

WAIT = 20.0


def _wait_for_gate(tide, run_id, gate_name):
    def find():
        gates = [g for g in tide.runs.get(run_id)["gates"] if g["name"] == gate_name]
        return gates[0] if gates else None

    return wait_until(find, WAIT, f"gate {gate_name!r} to appear on run {run_id}")


def _resolve(base_url, run_id, gate_id, body):
    return http("POST", f"{base_url}/runs/{run_id}/gates/{gate_id}/resolve", body)


def test_gate_waits_and_resolves_exactly_once(tide, base_url):
    name = unique("gate")
    run_ids: queue.Queue = queue.Queue()
    state = {"crash": True}

    def wf(run, input):
        run_ids.put(run.run_id)
        decision = run.gate(
            "approve-send",
            "Send this report?",
            data={"reportId": "r1"},
            capability={"name": "report.send", "scopes": ["report:send"]},
            poll_s=0.05,
        )
        out = {
            "approved": decision.approved,
            "decision": decision.decision,
            "status": decision.status,
            "actor": decision.actor,
            "payload": decision.payload,
            "gateId": decision.gate_id,
            "name": decision.name,
        }
        if state["crash"]:
            state["crash"] = False
            raise RuntimeError("crash after gate")
        return out

    thread, cap = in_thread(lambda: tide.run(name, wf, input={"r": 1}))
    run_id = run_ids.get(timeout=WAIT)
    gate = _wait_for_gate(tide, run_id, "approve-send")
    assert gate["status"] == "pending" and gate["decision"] is None and gate["resolvedAt"] is None
    assert gate["prompt"] == "Send this report?" and gate["data"] == {"reportId": "r1"}
    assert gate["capability"] == {"name": "report.send", "scopes": ["report:send"]}
    assert gate["channels"] == []
    token = gate["resolveToken"]
    assert len(token) == 32 and all(c in "0123456789abcdef" for c in token)
    assert not cap.done.is_set(), "workflow must keep waiting while the gate is pending"

    # A wrong token is refused and does not consume the gate.
    status, body, _ = _resolve(base_url, run_id, gate["id"], {"token": "f" * 32, "decision": "rejected"})
    assert status == 409, body
    assert body == {"error": "gate not found, already resolved, or invalid token"}

    status, body, _ = _resolve(
        base_url, run_id, gate["id"], {"token": token, "decision": "approved", "actor": "yao", "payload": {"note": "lgtm"}}
    )
    assert status == 200, body
    assert body["gate"]["status"] == "approved" and body["gate"]["decision"] == "approved"
    assert body["gate"]["actor"] == "yao" and body["gate"]["decisionPayload"] == {"note": "lgtm"}

    join(cap, WAIT, "the workflow to observe the gate decision")
    assert isinstance(cap.error, RuntimeError) and "crash after gate" in str(cap.error), cap.error

    # Second resolve (even with the right token and another decision) → 409; first decision stands.
    status, body, _ = _resolve(base_url, run_id, gate["id"], {"token": token, "decision": "rejected", "actor": "eve"})
    assert status == 409, body
    assert body == {"error": "gate not found, already resolved, or invalid token"}
    status, body, _ = _resolve(base_url, run_id, gate["id"], {"token": "0" * 32, "decision": "approved"})
    assert status == 409, body

    # Resume: the resolved gate replays its decision immediately (no new gate, no new resolve).
    result = tide.run(name, wf, run_id=run_id)
    assert result == {
        "approved": True,
        "decision": "approved",
        "status": "approved",
        "actor": "yao",
        "payload": {"note": "lgtm"},
        "gateId": gate["id"],
        "name": "approve-send",
    }

    detail = tide.runs.get(run_id)
    assert detail["run"]["status"] == "completed"
    assert len(detail["gates"]) == 1
    stored = detail["gates"][0]
    assert stored["id"] == gate["id"] and stored["resolveToken"] == token
    assert stored["status"] == "approved" and stored["decision"] == "approved"
    assert stored["actor"] == "yao" and stored["decisionPayload"] == {"note": "lgtm"}
    assert stored["resolvedAt"] is not None
    assert events_of(detail, "gate.created")[0]["payload"]["gate"]["id"] == gate["id"]
    resolved = events_of(detail, "gate.resolved")
    assert len(resolved) == 1
    public = resolved[0]["payload"]["gate"]
    assert public["status"] == "approved" and public["actor"] == "yao" and public["resolveToken"] == token
    assert public["resolveUrl"].endswith(f"/runs/{run_id}/gates/{gate['id']}/resolve")
    types = event_types(detail)
    assert types.index("gate.created") < types.index("gate.resolved")
    assert types.count("gate.created") == 1
    assert_gap_free(detail["events"], run_id)


def test_gate_poll_endpoint_reports_run_status(tide, base_url):
    name = unique("gate-poll")
    run_ids: queue.Queue = queue.Queue()

    def wf(run, input):
        run_ids.put(run.run_id)
        return run.gate("g", "ok?", poll_s=0.05).decision

    _, cap = in_thread(lambda: tide.run(name, wf))
    run_id = run_ids.get(timeout=WAIT)
    gate = _wait_for_gate(tide, run_id, "g")
    status, body, _ = http("GET", f"{base_url}/runs/{run_id}/gates/{gate['id']}")
    assert status == 200 and body["runStatus"] == "running" and body["gate"]["status"] == "pending"
    status, _, _ = _resolve(base_url, run_id, gate["id"], {"token": gate["resolveToken"], "decision": "rejected"})
    assert status == 200
    join(cap, WAIT, "workflow after rejection")
    assert cap.error is None and cap.value == "rejected"
    stored = tide.runs.get(run_id)["gates"][0]
    assert stored["decisionPayload"] == {}  # payload defaults to {}
    assert stored["actor"] is None


def test_cancel_while_waiting_on_gate_raises_run_cancelled(tide, base_url):
    name = unique("gate-cancel")
    run_ids: queue.Queue = queue.Queue()

    def wf(run, input):
        run_ids.put(run.run_id)
        run.step("before", lambda: "x")
        run.gate("approve", "Proceed?", poll_s=0.05)
        run.step("after", lambda: "must not run")
        return "unreachable"

    _, cap = in_thread(lambda: tide.run(name, wf))
    run_id = run_ids.get(timeout=WAIT)
    gate = _wait_for_gate(tide, run_id, "approve")

    cancelled = tide.runs.cancel(run_id, reason="stop", actor="ops")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelReason"] == "stop" and cancelled["cancelActor"] == "ops"
    assert cancelled["leaseOwner"] is None
    assert cancelled["cancelledAt"] is not None and cancelled["completedAt"] is not None

    join(cap, WAIT, "the waiting workflow to observe the cancellation")
    assert isinstance(cap.error, RunCancelled), repr(cap.error)
    assert cap.error.run_id == run_id

    detail = tide.runs.get(run_id)
    assert detail["run"]["status"] == "cancelled"
    types = event_types(detail)
    assert "run.failed" not in types, "the client must not report a failure after cancellation"
    assert "run.completed" not in types
    assert types[-1] == "run.cancelled"
    assert detail["events"][-1]["payload"] == {"reason": "stop", "actor": "ops"}
    assert [s["name"] for s in detail["steps"]] == ["before"]
    assert detail["gates"][0]["status"] == "pending"  # gates are not auto-resolved
    status, body, _ = http("GET", f"{base_url}/runs/{run_id}/gates/{gate['id']}")
    assert status == 200 and body["runStatus"] == "cancelled"

    # Re-running a cancelled run: begin → 409 run_cancelled → RunCancelled; nothing changes.
    with pytest.raises(RunCancelled):
        tide.run(name, wf, run_id=run_id)
    after = tide.runs.get(run_id)
    assert after["run"]["status"] == "cancelled"
    assert len(after["events"]) == len(detail["events"])
    assert_gap_free(after["events"], run_id)


def test_cancel_observed_at_next_step_boundary(tide):
    name = unique("step-cancel")
    seen = {}

    def wf(run, input):
        seen["run_id"] = run.run_id
        run.step("one", lambda: 1)
        tide.runs.cancel(run.run_id, reason="mid-run")
        run.step("two", lambda: 2)
        return "unreachable"

    with pytest.raises(RunCancelled):
        tide.run(name, wf)
    detail = tide.runs.get(seen["run_id"])
    assert detail["run"]["status"] == "cancelled"
    assert [s["name"] for s in detail["steps"]] == ["one"]
    assert "run.failed" not in event_types(detail)
    assert event_types(detail)[-1] == "run.cancelled"


def test_gate_begin_on_cancelled_run_raises_run_cancelled(tide):
    """Gate begin → 409 {"code":"run_cancelled"} → RunCancelled."""
    name = unique("gate-on-cancelled")
    seen = {}

    def wf(run, input):
        seen["run_id"] = run.run_id
        tide.runs.cancel(run.run_id)
        return run.gate("late", "too late?", poll_s=0.05)

    with pytest.raises(RunCancelled):
        tide.run(name, wf)
    detail = tide.runs.get(seen["run_id"])
    assert detail["gates"] == []
    assert detail["run"]["status"] == "cancelled"
