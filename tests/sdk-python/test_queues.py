"""Queues, schedules and the reconciler through the real client, beyond
test_queues_schedules.py: cancelling queued runs, caps seen by the work
loop, schedule validation, config clearing, and — on a server whose
reconciler ticks fast — push dispatch (signed run.invoke), deadlines and
expired leases, which exercise the reconciler wiring of `serve` itself."""

from __future__ import annotations

import datetime
import itertools

import pytest
from tidebase import Tidebase, TidebaseError, verify_webhook_signature

from helpers import WebhookReceiver, event_types, events_of, http, unique, wait_until

WAIT = 20.0
INVOKE_SECRET = "sdk-invoke-secret"


def _work(tide: Tidebase, queues, predicate, **kwargs):
    """Run tide.work() until predicate() holds, bounded by WAIT seconds."""
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=WAIT)

    def stop():
        if predicate():
            return True
        if datetime.datetime.now() > deadline:
            raise AssertionError(f"work loop did not reach its goal within {WAIT}s")
        return False

    tide.work(queues, poll_s=0.05, stop=stop, **kwargs)


@pytest.fixture(scope="module")
def reconciling_server(start_server):
    """A server whose reconciler ticks every 100 ms, with short leases and a
    webhook secret."""
    return start_server(
        "reconciler",
        {
            "TIDEBASE_RECONCILE_MS": "100",
            "TIDEBASE_LEASE_MS": "300",
            "TIDEBASE_WEBHOOK_SECRET": INVOKE_SECRET,
        },
    )


@pytest.fixture
def tide_fast(reconciling_server):
    return Tidebase(url=reconciling_server.url)


def test_cancelled_queued_run_is_never_worked(tide):
    queue = unique("q-cancel")
    wf_name = unique("never")
    ran = []
    tide.workflow(wf_name, lambda run, input: ran.append(input))
    item = tide.enqueue(wf_name, queue=queue, input={"n": 1}, dedupe_key="once")
    cancelled = tide.runs.cancel(item["run"]["id"], reason="not needed", actor="ops")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelReason"] == "not needed" and cancelled["cancelActor"] == "ops"
    assert cancelled["completedAt"] is not None

    polls = itertools.count()
    tide.work([queue], poll_s=0.01, stop=lambda: next(polls) >= 3)
    assert ran == []
    detail = tide.runs.get(item["run"]["id"])
    assert detail["run"]["status"] == "cancelled"
    assert event_types(detail) == ["run.enqueued", "run.cancelled"]
    # The cancellation freed the dedupe key.
    again = tide.enqueue(wf_name, queue=queue, dedupe_key="once")
    assert again["deduplicated"] is False and again["run"]["id"] != item["run"]["id"]
    tide.runs.cancel(again["run"]["id"])


def test_work_loop_respects_the_concurrency_cap(tide):
    queue = unique("q-cap")
    wf_name = unique("capped")
    tide.queues.configure(queue, concurrency=1)
    first = tide.enqueue(wf_name, queue=queue, input={"n": 1}, priority=1)
    second = tide.enqueue(wf_name, queue=queue, input={"n": 2})
    seen = []

    @tide.workflow(wf_name)
    def wf(run, input):
        other = second if input["n"] == 1 else first
        # While this run holds the only slot, the other one is not claimed,
        # even though the loop asks for two.
        seen.append((input["n"], tide.runs.get(other["run"]["id"])["run"]["status"]))
        return input["n"]

    _work(tide, [queue], lambda: len(seen) >= 2, limit=2)
    assert seen == [(1, "queued"), (2, "completed")]
    stats = {q["name"]: q for q in tide.queues.list()}
    assert stats[queue]["completed"] == 2 and stats[queue]["config"]["concurrency"] == 1


def test_queue_config_null_clears_a_cap(tide, base_url):
    queue = unique("q-clear")
    tide.queues.configure(queue, concurrency=2, rate_per_minute=5)
    # The SDK never sends null; a raw null clears the field (our deviation).
    status, body, _ = http("PUT", f"{base_url}/queues/{queue}/config", {"concurrency": None})
    assert status == 200
    assert body["config"] == {"name": queue, "concurrency": None, "ratePerMinute": 5, "invokeUrl": None}
    assert tide.queues.configure(queue)["config"]["ratePerMinute"] == 5  # {} keeps everything
    stats = {q["name"]: q for q in tide.queues.list()}
    assert stats[queue]["queued"] == 0 and stats[queue]["config"]["concurrency"] is None


def test_invalid_schedules_are_400s(tide):
    name = unique("bad-sched")
    with pytest.raises(TidebaseError) as excinfo:
        tide.schedules.set(name, cron="61 * * * *", workflow_name="w")
    assert excinfo.value.status == 400
    assert "minute field" in excinfo.value.body
    with pytest.raises(TidebaseError) as excinfo:
        tide.schedules.set(name, cron="0 0 30 2 *", workflow_name="w")
    assert excinfo.value.status == 400 and "never fires" in excinfo.value.body
    assert name not in [s["name"] for s in tide.schedules.list()]

    ok = tide.schedules.set(name, cron="0 0 1 1 *", workflow_name="w")
    assert ok["nextRunAt"].endswith("-01-01T00:00:00.000Z")
    assert tide.schedules.delete(name) == {"deleted": name}


def test_push_queue_gets_signed_run_invoke(tide_fast, webhook_receiver):
    queue = unique("q-push")
    wf_name = unique("pushed")
    config = tide_fast.queues.configure(queue, invoke_url=webhook_receiver.url)["config"]
    assert config["invokeUrl"] == webhook_receiver.url
    item = tide_fast.enqueue(wf_name, queue=queue, input={"x": 1})
    run_id = item["run"]["id"]

    wait_until(lambda: webhook_receiver.requests, WAIT, "the run.invoke webhook")
    request = webhook_receiver.requests[0]
    assert verify_webhook_signature(request["raw"], request["headers"].get("x-tidebase-signature"), INVOKE_SECRET)
    assert request["headers"]["x-tidebase-signature"].startswith("sha256=")
    assert not verify_webhook_signature(request["raw"] + b" ", request["headers"]["x-tidebase-signature"], INVOKE_SECRET)
    body = webhook_receiver.bodies()[0]
    assert body == {"type": "run.invoke", "runId": run_id, "workflowName": wf_name, "reason": "queue_dispatch", "attempt": 0}

    detail = wait_until(
        lambda: (d := tide_fast.runs.get(run_id))["recoveryAttempts"] and d["recoveryAttempts"][0]["status"] == "delivered" and d,
        WAIT,
        "the delivered invoke attempt",
    )
    assert detail["run"]["status"] == "queued"
    assert [a["reason"] for a in detail["recoveryAttempts"]] == ["queue_dispatch"]
    assert event_types(detail) == ["run.enqueued", "recovery.started", "recovery.delivered"]

    # The handler would now run it by id; begin takes it out of dispatch.
    def handler(run, input):
        return input["x"] + 1

    assert tide_fast.run(wf_name, handler, run_id=run_id) == 2
    assert len(webhook_receiver.requests) == 1, "dispatched once within the redelivery horizon"


def test_deadline_and_expired_lease_via_the_reconciler_loop(tide_fast):
    queue = unique("q-deadline")
    doomed = tide_fast.enqueue(unique("late"), queue=queue, deadline_s=0.2)
    detail = wait_until(
        lambda: (d := tide_fast.runs.get(doomed["run"]["id"]))["run"]["status"] == "cancelled" and d,
        WAIT,
        "the deadline cancellation",
    )
    assert detail["run"]["cancelReason"] == "deadline"
    assert events_of(detail, "run.cancelled")[0]["payload"] == {"reason": "deadline", "actor": "reconciler"}

    # A claimed run whose worker vanished is requeued after its 300 ms lease.
    lost = tide_fast.enqueue(unique("lost"), queue=queue, max_attempts=2)
    claimed = tide_fast.request("POST", "/queues/claim", {"queues": [queue], "leaseOwner": "ghost"})
    assert [r["id"] for r in claimed["runs"]] == [lost["run"]["id"]]
    detail = wait_until(
        lambda: (d := tide_fast.runs.get(lost["run"]["id"]))["run"]["status"] == "queued" and d,
        WAIT,
        "the lease-expiry requeue",
    )
    assert detail["run"]["leaseOwner"] is None and detail["run"]["attempt"] == 1
    assert events_of(detail, "run.requeued")[0]["payload"] == {"reason": "lease_expired", "attempt": 1, "maxAttempts": 2}
