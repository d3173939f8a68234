"""Beyond the run core: enqueue / work loop / queue config / schedules through
the real client (python-sdk-calls.md §1 enqueue/work, §3, §4, §10 work)."""

from __future__ import annotations

import asyncio
import datetime
import itertools

import pytest
from tidebase import Tidebase, TidebaseError
from tidebase.aio import AsyncTidebase

from helpers import assert_gap_free, event_types, events_of, unique

WAIT = 20.0


def _parse_ts(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def _work_until(tide: Tidebase, queues, predicate, **kwargs):
    """Run tide.work() until predicate() holds, bounded by WAIT seconds."""
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=WAIT)

    def stop():
        if predicate():
            return True
        if datetime.datetime.now() > deadline:
            raise AssertionError(f"work loop did not reach its goal within {WAIT}s")
        return False

    tide.work(queues, poll_s=0.05, stop=stop, **kwargs)


def test_enqueue_and_work_loop_by_priority(tide):
    queue = unique("q")
    wf_name = unique("queued-wf")
    order = []

    @tide.workflow(wf_name)
    def wf(run, input):
        order.append(input["n"])
        return run.step("double", lambda: input["n"] * 2)

    low = tide.enqueue(wf_name, queue=queue, input={"n": 1}, priority=0, metadata={"k": 1})
    high = tide.enqueue(wf_name, queue=queue, input={"n": 2}, priority=5, max_attempts=3, deadline_s=600)
    assert low["deduplicated"] is False and high["deduplicated"] is False
    run = high["run"]
    assert run["status"] == "queued" and run["queue"] == queue and run["priority"] == 5
    assert run["maxAttempts"] == 3 and run["deadlineAt"] is not None and run["runAt"] is not None
    assert low["run"]["metadata"] == {"k": 1}

    errors = []
    _work_until(tide, [queue], lambda: len(order) >= 2, lease_owner="worker-1", on_error=lambda e, r: errors.append(e))
    assert errors == []
    assert order == [2, 1], "higher priority must be claimed first"

    for item, n in ((high, 2), (low, 1)):
        detail = tide.runs.get(item["run"]["id"])
        assert detail["run"]["status"] == "completed" and detail["run"]["result"] == n * 2
        assert detail["run"]["attempt"] == 1
        assert event_types(detail) == ["run.enqueued", "run.claimed", "step.started", "step.completed", "run.completed"]
        assert detail["events"][0]["payload"]["queue"] == queue
        assert detail["events"][1]["payload"] == {"leaseOwner": "worker-1", "queue": queue}
        assert detail["steps"][0]["leaseOwner"] is None
        assert_gap_free(detail["events"], item["run"]["id"])

    stats = {q["name"]: q for q in tide.queues.list()}
    assert stats[queue]["completed"] == 2 and stats[queue]["queued"] == 0 and stats[queue]["config"] is None


def test_enqueue_dedupe_key(tide):
    queue = unique("q-dedupe")
    first = tide.enqueue("dedupe-wf", queue=queue, dedupe_key="k1", input={"a": 1})
    second = tide.enqueue("other-wf", queue=queue, dedupe_key="k1", input={"a": 2})
    assert first["deduplicated"] is False
    assert second["deduplicated"] is True
    assert second["run"]["id"] == first["run"]["id"]
    assert second["run"]["workflowName"] == "dedupe-wf"
    assert first["run"]["dedupeKey"] == "k1"
    # Another queue has its own key space.
    assert tide.enqueue("dedupe-wf", queue=queue + "-b", dedupe_key="k1")["deduplicated"] is False


def test_delayed_run_is_not_claimed(tide):
    queue = unique("q-delay")
    item = tide.enqueue("delayed-wf", queue=queue, delay_s=3600)
    run_at = _parse_ts(item["run"]["runAt"])
    created = _parse_ts(item["run"]["createdAt"])
    assert run_at - created >= datetime.timedelta(seconds=3590)
    calls = itertools.count()
    tide.workflow("delayed-wf", lambda run, input: "ran")
    tide.work([queue], poll_s=0.01, stop=lambda: next(calls) >= 2)
    assert tide.runs.get(item["run"]["id"])["run"]["status"] == "queued"


def test_work_loop_fails_unregistered_workflow(tide):
    queue = unique("q-unreg")
    wf_name = unique("nobody-home")
    item = tide.enqueue(wf_name, queue=queue)
    _work_until(tide, [queue], lambda: tide.runs.get(item["run"]["id"])["run"]["status"] == "failed")
    detail = tide.runs.get(item["run"]["id"])
    assert detail["run"]["error"] == {"message": f"no workflow registered for {wf_name}"}
    assert event_types(detail)[-1] == "run.failed"


def test_queue_run_failure_is_requeued_with_backoff(tide):
    queue = unique("q-retry")
    wf_name = unique("flaky-queued")
    tide.workflow(wf_name, lambda run, input: (_ for _ in ()).throw(RuntimeError("first attempt fails")))
    item = tide.enqueue(wf_name, queue=queue, max_attempts=2)
    errors = []
    _work_until(tide, [queue], lambda: errors, on_error=lambda e, r: errors.append(e))
    assert isinstance(errors[0], RuntimeError)
    detail = tide.runs.get(item["run"]["id"])
    run = detail["run"]
    assert run["status"] == "queued" and run["attempt"] == 1 and run["leaseOwner"] is None
    assert run["error"] == {"name": "RuntimeError", "message": "first attempt fails"}
    requeued = events_of(detail, "run.requeued")
    assert len(requeued) == 1
    assert requeued[0]["payload"]["attempt"] == 1 and requeued[0]["payload"]["maxAttempts"] == 2
    delay = _parse_ts(run["runAt"]) - _parse_ts(run["updatedAt"])
    assert datetime.timedelta(seconds=4) <= delay <= datetime.timedelta(seconds=6), delay
    assert "run.failed" not in event_types(detail)


def test_queue_configure_and_list(tide):
    queue = unique("q-config")
    config = tide.queues.configure(queue, concurrency=2, rate_per_minute=10)["config"]
    assert config == {"name": queue, "concurrency": 2, "ratePerMinute": 10, "invokeUrl": None}
    updated = tide.queues.configure(queue, concurrency=3)["config"]
    assert updated == {"name": queue, "concurrency": 3, "ratePerMinute": 10, "invokeUrl": None}
    stats = {q["name"]: q for q in tide.queues.list()}
    assert stats[queue] == {
        "name": queue,
        "queued": 0,
        "running": 0,
        "failed": 0,
        "completed": 0,
        "cancelled": 0,
        "config": updated,
    }


def test_schedules_set_list_delete(tide):
    name = unique("sched")
    schedule = tide.schedules.set(name, cron="*/5 * * * *", workflow_name="digest", input={"a": 1}, queue="sq", max_attempts=2)
    assert schedule["name"] == name and schedule["cron"] == "*/5 * * * *"
    assert schedule["workflowName"] == "digest" and schedule["input"] == {"a": 1}
    assert schedule["queue"] == "sq" and schedule["maxAttempts"] == 2 and schedule["enabled"] is True
    next_run = _parse_ts(schedule["nextRunAt"])
    assert next_run.minute % 5 == 0 and next_run.second == 0 and next_run > datetime.datetime.now(datetime.timezone.utc)
    assert schedule["lastEnqueuedAt"] is None

    replaced = tide.schedules.set(name, cron="0 9 * * *", workflow_name="digest2", enabled=False)
    assert replaced["input"] == {} and replaced["queue"] == "default" and replaced["maxAttempts"] == 1
    assert replaced["enabled"] is False and _parse_ts(replaced["nextRunAt"]).hour == 9

    names = [s["name"] for s in tide.schedules.list()]
    assert name in names and names == sorted(names)
    assert tide.schedules.delete(name) == {"deleted": name}
    with pytest.raises(TidebaseError) as excinfo:
        tide.schedules.delete(name)
    assert excinfo.value.status == 404


def test_async_work_loop(base_url):
    queue = unique("q-aio")
    wf_name = unique("aio-queued")

    async def main():
        tide = AsyncTidebase(url=base_url)
        done = asyncio.Event()

        @tide.workflow(wf_name)
        async def wf(run, input):
            value = await run.step("s", lambda: input["v"] + 1)
            done.set()
            return value

        item = await tide.enqueue(wf_name, queue=queue, input={"v": 41})
        worker = asyncio.create_task(tide.work([queue], poll_s=0.05))
        try:
            await asyncio.wait_for(done.wait(), WAIT)
            # let the loop report completion
            for _ in range(200):
                run = (await asyncio.to_thread(tide.runs.get, item["run"]["id"]))["run"]
                if run["status"] == "completed":
                    break
                await asyncio.sleep(0.05)
        finally:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker
        return item["run"]["id"]

    run_id = asyncio.run(main())
    detail = Tidebase(url=base_url).runs.get(run_id)
    assert detail["run"]["status"] == "completed" and detail["run"]["result"] == 42
    assert "run.started" not in event_types(detail)
