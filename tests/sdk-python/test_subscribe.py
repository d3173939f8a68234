"""tide.runs.subscribe(): SSE backlog then live events, in seq order, no gaps or
duplicates; also with API-key auth via ?token=."""

from __future__ import annotations

import threading
from urllib import error as urlerror

import pytest
from tidebase import RunContext, Tidebase

from helpers import assert_gap_free, in_thread, join, unique, wait_until

WAIT = 30.0


def _collect(client, run_id, count, after=0, progress=None):
    """Read `count` events from the subscription, then close it."""
    events = []
    stream = client.runs.subscribe(run_id, after=after)
    try:
        for event in stream:
            events.append(event)
            if progress is not None:
                progress.set()
            if len(events) >= count:
                break
    finally:
        stream.close()
    return events


def _check_sequence(events, run_id, first_seq, count):
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(first_seq, first_seq + count)), f"not gap-free / duplicated: {seqs}"
    assert all(e["runId"] == run_id for e in events)
    for e in events:
        assert set(e) >= {"id", "runId", "seq", "type", "payload", "createdAt"}, e


def _backlog_then_live(client, run_id_prefix):
    run = client.runs.create(unique(run_id_prefix))
    run_id = run["id"]
    ctx = RunContext(client, run_id, "writer")
    for i in range(3):
        ctx.state.set({"backlog": i})
    backlog_n, live_n = 4, 20  # run.created + 3 state.updated, then 20 live writes

    got_backlog = threading.Event()
    received = []

    def reader():
        stream = client.runs.subscribe(run_id)
        try:
            for event in stream:
                received.append(event)
                if len(received) == backlog_n:
                    got_backlog.set()
                if len(received) >= backlog_n + live_n:
                    break
        finally:
            stream.close()
        return received

    _, cap = in_thread(reader, "sse-reader")
    assert got_backlog.wait(WAIT), f"backlog not received within {WAIT}s (got {len(received)} events)"
    for i in range(live_n):
        ctx.state.patch({"live": i})
    join(cap, WAIT, f"{backlog_n + live_n} SSE events (got {len(received)})")
    assert cap.error is None, repr(cap.error)
    events = cap.value
    _check_sequence(events, run_id, 1, backlog_n + live_n)
    assert [e["type"] for e in events] == ["run.created"] + ["state.updated"] * (3 + live_n)
    assert [e["payload"]["value"] for e in events[1:4]] == [{"backlog": i} for i in range(3)]
    assert [e["payload"]["patch"] for e in events[4:]] == [{"live": i} for i in range(live_n)]
    # The stream carries exactly the stored events.
    assert events == client.runs.get(run_id)["events"]


def test_subscribe_backlog_then_live(tide):
    _backlog_then_live(tide, "sse")


def test_subscribe_after_skips_backlog(tide):
    run = tide.runs.create(unique("sse-after"))
    ctx = RunContext(tide, run["id"], "writer")
    for i in range(4):
        ctx.state.set({"i": i})
    _, cap = in_thread(lambda: _collect(tide, run["id"], 2, after=3))
    join(cap, WAIT, "the 2 backlog events after seq 3")
    assert cap.error is None, repr(cap.error)
    _check_sequence(cap.value, run["id"], 4, 2)
    assert [e["payload"]["value"] for e in cap.value] == [{"i": 2}, {"i": 3}]


def test_subscribe_after_then_live(tide):
    run = tide.runs.create(unique("sse-after-live"))
    ctx = RunContext(tide, run["id"], "writer")
    ctx.state.set({"i": 0})  # seq 2
    progress = threading.Event()
    _, cap = in_thread(lambda: _collect(tide, run["id"], 3, after=1, progress=progress))
    assert progress.wait(WAIT), "backlog event after seq 1 not received"
    ctx.state.set({"i": 1})
    ctx.state.set({"i": 2})
    join(cap, WAIT, "live events after the backlog")
    assert cap.error is None, repr(cap.error)
    _check_sequence(cap.value, run["id"], 2, 3)


@pytest.mark.parametrize("round_", range(5))
def test_subscribe_during_concurrent_writes_has_no_gaps_or_duplicates(tide, round_):
    """The writer starts at the same time as the subscriber, so events land while the
    server switches from backlog to live delivery."""
    run = tide.runs.create(unique("sse-race"))
    run_id = run["id"]
    writes = 40
    total = 1 + writes

    def writer():
        ctx = RunContext(tide, run_id, "writer")
        for i in range(writes):
            ctx.state.set({"i": i})

    _, reader_cap = in_thread(lambda: _collect(tide, run_id, total), "sse-reader")
    _, writer_cap = in_thread(writer, "writer")
    join(writer_cap, WAIT, "the writer")
    assert writer_cap.error is None, repr(writer_cap.error)
    join(reader_cap, WAIT, f"{total} SSE events")
    assert reader_cap.error is None, repr(reader_cap.error)
    _check_sequence(reader_cap.value, run_id, 1, total)
    assert [e["payload"]["value"] for e in reader_cap.value[1:]] == [{"i": i} for i in range(writes)]


def test_subscribe_sees_workflow_events_live(tide):
    """Events from a running workflow (another client, another thread) stream in order."""
    name = unique("sse-wf")
    run = tide.runs.create(name)
    run_id = run["id"]
    release = threading.Event()

    def wf(ctx, input):
        release.wait(WAIT)
        ctx.step("a", lambda: 1)
        ctx.state.set({"x": 1})
        return "ok"

    expected = ["run.created", "run.started", "step.started", "step.completed", "state.updated", "run.completed"]
    first = threading.Event()
    _, reader = in_thread(lambda: _collect(tide, run_id, len(expected), progress=first))
    assert first.wait(WAIT), "backlog not received"
    _, worker = in_thread(lambda: Tidebase(url=tide.url).run(name, wf, run_id=run_id))
    release.set()
    join(worker, WAIT, "the workflow")
    assert worker.error is None and worker.value == "ok", repr(worker.error)
    join(reader, WAIT, "the workflow's events on the stream")
    assert reader.error is None, repr(reader.error)
    assert [e["type"] for e in reader.value] == expected
    _check_sequence(reader.value, run_id, 1, len(expected))
    assert_gap_free(tide.runs.get(run_id)["events"], run_id)


def test_subscribe_with_api_key_uses_token_query(tide_auth):
    _backlog_then_live(tide_auth, "sse-auth")


def test_subscribe_without_key_on_auth_server_is_401(auth_server, api_key):
    keyed = Tidebase(url=auth_server.url, api_key=api_key)
    run = keyed.runs.create(unique("sse-noauth"))
    anonymous = Tidebase(url=auth_server.url)
    with pytest.raises(urlerror.HTTPError) as excinfo:
        next(anonymous.runs.subscribe(run["id"]))
    assert excinfo.value.code == 401
    wrong = Tidebase(url=auth_server.url, api_key="wrong-key")
    with pytest.raises(urlerror.HTTPError) as excinfo:
        next(wrong.runs.subscribe(run["id"]))
    assert excinfo.value.code == 401
