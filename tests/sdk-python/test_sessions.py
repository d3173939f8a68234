"""v0.6 session runs with the real 0.7 client (sessions.md §1, §4, §5):
runs.attach with step replay, heartbeats (renewal, fencing after the run is
terminal or cancelled, the background thread), and non-blocking gates.
Skipped under tidebase 0.5.0, which has no such API."""

from __future__ import annotations

import json
import time

import pytest
from tidebase import RunCancelled, Tidebase, TidebaseError

from helpers import assert_gap_free, event_types, http, needs_sessions, unique, wait_until

pytestmark = needs_sessions

WAIT = 20.0
SHORT_LEASE_MS = 1000


@pytest.fixture(scope="module")
def short_lease_tide(start_server):
    srv = start_server("sessions-lease", {"TIDEBASE_LEASE_MS": str(SHORT_LEASE_MS)})
    return Tidebase(url=srv.url)


def test_attach_replays_steps_and_completes(tide):
    name = unique("session")
    calls = []
    session = tide.runs.attach(name, input={"q": 1}, heartbeat_s=None)
    assert session.run["status"] == "running" and session.run["attempt"] == 1

    def fetch():
        calls.append(1)
        return {"page": 1}

    first = session.step("fetch", fetch, input={"q": 1})
    again = session.step("fetch", fetch, input={"q": 1})
    assert first == again == {"page": 1}
    assert len(calls) == 1, "a step with the same name and input executes once"

    done = session.complete({"ok": True})
    assert done["run"]["status"] == "completed" and done["run"]["result"] == {"ok": True}
    with pytest.raises(RuntimeError, match="already completed"):
        tide.runs.attach(name, run_id=session.run_id, heartbeat_s=None)
    other = tide.runs.attach(unique("other"), heartbeat_s=None)
    with pytest.raises(ValueError, match="belongs to workflow"):
        tide.runs.attach(name, run_id=other.run_id, heartbeat_s=None)
    other.close()

    detail = tide.runs.get(session.run_id)
    assert event_types(detail) == ["run.created", "run.started", "step.started", "step.completed", "run.completed"]
    assert detail["run"]["attempt"] == 1
    assert_gap_free(detail["events"], session.run_id)


def test_heartbeat_renews_only_the_lease_and_is_fenced_after_complete(tide):
    session = tide.runs.attach(unique("heartbeat"), heartbeat_s=None)
    before = tide.runs.get(session.run_id)

    renewed = session.heartbeat()["run"]
    assert renewed["id"] == session.run_id and renewed["status"] == "running"
    assert renewed["leaseOwner"] == before["run"]["leaseOwner"]
    assert renewed["leaseExpiresAt"] >= before["run"]["leaseExpiresAt"]
    after = tide.runs.get(session.run_id)
    assert after["run"]["attempt"] == before["run"]["attempt"] == 1, "no new attempt"
    assert after["events"] == before["events"], "no event of any kind"

    session.complete()
    with pytest.raises(TidebaseError) as lost:
        session.heartbeat()
    assert lost.value.status == 409
    body = json.loads(lost.value.body)
    assert (body["code"], body["run"]["status"]) == ("lease_lost", "completed")


def test_heartbeat_after_cancel_raises_run_cancelled(tide):
    session = tide.runs.attach(unique("hb-cancel"), heartbeat_s=None)
    tide.runs.cancel(session.run_id, reason="stop")
    with pytest.raises(RunCancelled) as cancelled:
        session.heartbeat()
    assert cancelled.value.run_id == session.run_id


def test_heartbeat_thread_reports_a_cancelled_run(tide):
    lost = []
    session = tide.runs.attach(unique("hb-thread"), heartbeat_s=0.1, on_lease_lost=lost.append)
    first = tide.runs.get(session.run_id)["run"]["leaseExpiresAt"]
    wait_until(
        lambda: tide.runs.get(session.run_id)["run"]["leaseExpiresAt"] > first, WAIT, "a background renewal"
    )
    tide.runs.cancel(session.run_id)
    wait_until(lambda: lost, WAIT, "on_lease_lost after the cancel")
    assert isinstance(lost[0], RunCancelled)
    detail = tide.runs.get(session.run_id)
    assert event_types(detail) == ["run.created", "run.started", "run.cancelled"], "renewals append nothing"


def test_heartbeats_keep_a_session_and_a_lapsed_one_is_taken_over(short_lease_tide):
    tide = short_lease_tide
    name = unique("hb-lease")
    live = tide.runs.attach(name, heartbeat_s=0.2)
    # Renewed every 0.2 s, the 1 s lease outlives several lease lengths.
    time.sleep(SHORT_LEASE_MS * 2.5 / 1000)
    with pytest.raises(TidebaseError) as refused:
        tide.runs.attach(name, run_id=live.run_id, heartbeat_s=None)
    assert refused.value.status == 409 and "run is leased" in refused.value.body
    detail = tide.runs.get(live.run_id)
    assert detail["run"]["attempt"] == 1

    live.close()  # heartbeats stop; the lease lapses
    taker = wait_until(lambda: _attach(tide, name, live.run_id), WAIT, "a takeover after the lease lapsed")
    assert taker.run["attempt"] == 2 and taker.run["leaseOwner"] != detail["run"]["leaseOwner"]
    with pytest.raises(TidebaseError) as fenced:
        live.heartbeat()
    assert fenced.value.status == 409 and json.loads(fenced.value.body)["code"] == "lease_lost"
    taker.complete("done")


def _attach(tide, name, run_id):
    """A session on `run_id`, or None while another holds its lease."""
    try:
        return tide.runs.attach(name, run_id=run_id, heartbeat_s=None)
    except TidebaseError as e:
        assert e.status == 409 and "run is leased" in e.body, e
        return None


def test_non_blocking_gates_rejoin_returns_the_decision(tide, base_url):
    session = tide.runs.attach(unique("gates"), heartbeat_s=None)
    pending = session.gates.begin("approve", "Ship it?", data={"n": 1})
    assert pending["status"] == "pending" and pending["decision"] is None
    assert pending["name"] == "approve" and pending["gateId"].startswith("gate_")
    # A retried caller begins again: same gate, still pending, no new event.
    assert session.gates.begin("approve", "Ship it?") == pending
    assert event_types(tide.runs.get(session.run_id)).count("gate.created") == 1

    (gate,) = tide.runs.get(session.run_id)["gates"]
    status, body, _ = http(
        "POST",
        f"{base_url}/runs/{session.run_id}/gates/{gate['id']}/resolve",
        {"token": gate["resolveToken"], "decision": "approved", "actor": "ops", "payload": {"ok": 1}},
    )
    assert status == 200, body

    decided = session.gates.begin("approve", "Ship it?")
    assert (decided["gateId"], decided["status"], decided["decision"]) == (pending["gateId"], "approved", "approved")
    assert (decided["actor"], decided["payload"]) == ("ops", {"ok": 1})
    assert session.gates.get(pending["gateId"]) == decided
    session.complete()


def test_gates_get_on_a_cancelled_run_raises(tide):
    session = tide.runs.attach(unique("gates-cancel"), heartbeat_s=None)
    gate = session.gates.begin("approve", "ok?")
    tide.runs.cancel(session.run_id)
    with pytest.raises(RunCancelled):
        session.gates.get(gate["gateId"])
    with pytest.raises(RunCancelled):
        session.gates.begin("another", "ok?")
