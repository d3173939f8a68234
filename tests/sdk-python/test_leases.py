"""Run and step leases as seen through the client: a second worker is refused
while the lease is live, takes over after expiry, and the old worker is fenced
out (semantics.md §3). Uses a server with TIDEBASE_LEASE_MS=1000."""

from __future__ import annotations

import datetime
import queue
import threading
from collections import Counter

import pytest
from tidebase import Tidebase, TidebaseError

from helpers import assert_gap_free, events_of, http, in_thread, join, step_by_name, unique, wait_until

WAIT = 20.0
SHORT_LEASE_MS = 1000


@pytest.fixture(scope="module")
def short_lease_server(start_server):
    return start_server("lease", {"TIDEBASE_LEASE_MS": str(SHORT_LEASE_MS)})


def _parse_ts(value):
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def _expired(value) -> bool:
    # Same machine, same clock; a margin keeps this robust to rounding.
    return value is None or _parse_ts(value) + datetime.timedelta(milliseconds=250) < datetime.datetime.now(datetime.timezone.utc)


def test_second_worker_refused_while_lease_is_live(tide, base_url):
    """Default 60 s lease: while worker A waits on a gate, worker B's begin → 409 run is leased."""
    name = unique("leased")
    ids: queue.Queue = queue.Queue()

    def wf(run, input):
        ids.put(run.run_id)
        return run.gate("hold", "hold the lease", poll_s=0.05).decision

    _, cap = in_thread(lambda: tide.run(name, wf))
    run_id = ids.get(timeout=WAIT)
    gate = wait_until(lambda: tide.runs.get(run_id)["gates"], WAIT, "the gate")[0]
    lease_owner = tide.runs.get(run_id)["run"]["leaseOwner"]
    assert lease_owner

    other = Tidebase(url=base_url)
    with pytest.raises(TidebaseError) as excinfo:
        other.run(name, lambda run, input: "B must not run", run_id=run_id)
    assert excinfo.value.status == 409
    assert '"run is leased"' in excinfo.value.body and lease_owner in excinfo.value.body

    status, _, _ = http(
        "POST", f"{base_url}/runs/{run_id}/gates/{gate['id']}/resolve", {"token": gate["resolveToken"], "decision": "approved"}
    )
    assert status == 200
    join(cap, WAIT, "worker A")
    assert cap.error is None and cap.value == "approved"
    detail = tide.runs.get(run_id)
    assert detail["run"]["status"] == "completed" and detail["run"]["attempt"] == 1
    assert len(events_of(detail, "run.started")) == 1


def test_expired_lease_takeover_and_fencing(short_lease_server):
    url = short_lease_server.url
    worker_a, worker_b = Tidebase(url=url), Tidebase(url=url)
    name = unique("takeover")
    ids: queue.Queue = queue.Queue()
    in_step = threading.Event()
    release_a = threading.Event()
    calls = Counter()

    def wf_a(run, input):
        ids.put(run.run_id)
        run.step("one", lambda: calls.update(["one-a"]) or 1)

        def hang():
            calls["two-a"] += 1
            in_step.set()
            release_a.wait(WAIT)  # simulates a worker that stalls past its lease
            return "from-a"

        run.step("two", hang)
        return "a finished"

    _, cap_a = in_thread(lambda: worker_a.run(name, wf_a), "worker-a")
    run_id = ids.get(timeout=WAIT)
    assert in_step.wait(WAIT), "worker A never reached step two"

    def leases_expired():
        detail = worker_b.runs.get(run_id)
        two = [s for s in detail["steps"] if s["name"] == "two"]
        return two and _expired(detail["run"]["leaseExpiresAt"]) and _expired(two[0]["leaseExpiresAt"])

    wait_until(leases_expired, WAIT, "worker A's run and step leases to expire")
    a_owner = worker_b.runs.get(run_id)["run"]["leaseOwner"]

    def wf_b(run, input):
        one = run.step("one", lambda: calls.update(["one-b"]) or 1)
        two = run.step("two", lambda: calls.update(["two-b"]) or "from-b")
        return {"one": one, "two": two}

    result = worker_b.run(name, wf_b, run_id=run_id)
    assert result == {"one": 1, "two": "from-b"}
    assert calls == Counter({"one-a": 1, "two-a": 1, "two-b": 1}), calls

    detail = worker_b.runs.get(run_id)
    assert detail["run"]["status"] == "completed" and detail["run"]["attempt"] == 2
    started = events_of(detail, "run.started")
    assert len(started) == 2 and started[1]["payload"]["leaseOwner"] != a_owner
    two = step_by_name(detail, "two")
    assert two["status"] == "completed" and two["output"] == "from-b" and two["attempt"] == 2
    assert [e["payload"]["attempt"] for e in events_of(detail, "step.started") if e["payload"]["name"] == "two"] == [1, 2]
    assert step_by_name(detail, "one")["attempt"] == 1

    # Worker A wakes up: its step complete is fenced (409 lease lost) and its
    # report does not overwrite the checkpoint written by B.
    release_a.set()
    join(cap_a, WAIT, "worker A after release")
    assert isinstance(cap_a.error, TidebaseError), repr(cap_a.error)
    assert cap_a.error.status == 409 and "step not found or lease lost" in cap_a.error.body
    after = worker_b.runs.get(run_id)
    two_after = step_by_name(after, "two")
    assert two_after["status"] == "completed" and two_after["output"] == "from-b" and two_after["attempt"] == 2
    assert len([e for e in events_of(after, "step.completed") if e["payload"]["name"] == "two"]) == 1
    assert not [e for e in events_of(after, "step.failed") if e["payload"]["name"] == "two"], "fenced fail must not be recorded"
    assert_gap_free(after["events"], run_id)
