"""tidebase.aio.AsyncTidebase: async steps, state_set, usage_record, gate."""

from __future__ import annotations

import asyncio

import pytest
from tidebase import RunCancelled
from tidebase.aio import AsyncTidebase

from helpers import assert_gap_free, event_types, events_of, http, step_by_name, unique

WAIT = 20.0


async def _wait_for_gate(tide: AsyncTidebase, run_id: str, gate_name: str) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        detail = await asyncio.to_thread(tide.runs.get, run_id)
        gates = [g for g in detail["gates"] if g["name"] == gate_name]
        if gates:
            return gates[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"gate {gate_name!r} did not appear on {run_id} within {WAIT}s")


def test_async_run_with_steps_state_usage_and_gate(base_url):
    name = unique("aio")
    calls = {"async": 0, "sync": 0, "flaky": 0}

    async def main():
        tide = AsyncTidebase(url=base_url)
        run_id_future: asyncio.Future = asyncio.get_running_loop().create_future()

        async def fetch():
            calls["async"] += 1
            await asyncio.sleep(0)
            return {"fetched": 1}

        async def flaky():
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                raise ConnectionError("first try fails")
            return "recovered"

        @tide.workflow(name)
        async def wf(run, input):
            run_id_future.set_result(run.run_id)
            a = await run.step("fetch", fetch, input={"q": input["q"]})
            b = await run.step("sync", lambda: (calls.__setitem__("sync", calls["sync"] + 1), a["fetched"] + 1)[1])
            c = await run.step("flaky", flaky, retries=1)
            await run.state_set({"a": a, "b": b}, label="after-steps")
            await run.state_patch({"c": c})
            saved = await run.state_save("checkpoint-1")
            await run.usage_record(kind="llm", input_tokens=3, output_tokens=4, provider="test")
            decision = await run.gate("approve", "Ship?", data={"b": b}, poll_s=0.05)
            return {"b": b, "c": c, "approved": decision.approved, "payload": decision.payload, "saved": saved["stateVersion"]["label"]}

        task = asyncio.create_task(tide.run(name, input={"q": "tides"}))
        run_id = await asyncio.wait_for(run_id_future, WAIT)

        async def resolver():
            gate = await _wait_for_gate(tide, run_id, "approve")
            assert not task.done()
            status, body, _ = await asyncio.to_thread(
                http,
                "POST",
                f"{base_url}/runs/{run_id}/gates/{gate['id']}/resolve",
                {"token": gate["resolveToken"], "decision": "approved", "actor": "async-test", "payload": {"ok": 1}},
            )
            assert status == 200, body
            return gate

        gate = await asyncio.wait_for(resolver(), WAIT)
        result = await asyncio.wait_for(task, WAIT)

        # Resuming the completed run short-circuits.
        again = await tide.run(name, run_id=run_id)
        assert again == result
        return run_id, gate, result

    run_id, gate, result = asyncio.run(main())
    assert result == {"b": 2, "c": "recovered", "approved": True, "payload": {"ok": 1}, "saved": "checkpoint-1"}
    assert calls == {"async": 1, "sync": 1, "flaky": 2}

    from tidebase import Tidebase

    detail = Tidebase(url=base_url).runs.get(run_id)
    assert detail["run"]["status"] == "completed" and detail["run"]["result"] == result
    assert [s["name"] for s in detail["steps"]] == ["fetch", "sync", "flaky"]
    assert step_by_name(detail, "fetch")["input"] == {"q": "tides"}
    flaky_step = step_by_name(detail, "flaky")
    assert flaky_step["attempt"] == 2 and flaky_step["options"] == {"retries": 1}
    assert detail["state"]["value"] == {"a": {"fetched": 1}, "b": 2, "c": "recovered"}
    assert detail["state"]["version"] == 2
    labels = [v["label"] for v in detail["stateVersions"] if v["label"]]
    assert labels == ["after-steps", "checkpoint-1"]
    assert [u["totalTokens"] for u in detail["usage"]] == [7]
    assert detail["gates"][0]["id"] == gate["id"] and detail["gates"][0]["actor"] == "async-test"
    assert event_types(detail) == [
        "run.created",
        "run.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "step.started",
        "step.failed",
        "step.started",
        "step.completed",
        "state.updated",
        "state.updated",
        "state.saved",
        "usage.recorded",
        "gate.created",
        "gate.resolved",
        "run.completed",
    ]
    assert events_of(detail, "step.failed")[0]["payload"]["retryable"] is True
    assert_gap_free(detail["events"], run_id)


def test_async_cancel_while_waiting_on_gate(base_url):
    name = unique("aio-cancel")

    async def main():
        tide = AsyncTidebase(url=base_url)
        started: asyncio.Future = asyncio.get_running_loop().create_future()

        async def wf(run, input):
            started.set_result(run.run_id)
            await run.gate("hold", "wait here", poll_s=0.05)
            return "unreachable"

        task = asyncio.create_task(tide.run(name, wf))
        run_id = await asyncio.wait_for(started, WAIT)
        await _wait_for_gate(tide, run_id, "hold")
        cancelled = await tide.cancel(run_id, reason="async stop", actor="tester")
        assert cancelled["status"] == "cancelled"
        with pytest.raises(RunCancelled):
            await asyncio.wait_for(task, WAIT)
        return run_id

    run_id = asyncio.run(main())
    from tidebase import Tidebase

    detail = Tidebase(url=base_url).runs.get(run_id)
    assert detail["run"]["status"] == "cancelled"
    assert detail["run"]["cancelReason"] == "async stop"
    assert "run.failed" not in event_types(detail)
    assert event_types(detail)[-1] == "run.cancelled"


def test_async_workflow_failure_then_resume(base_url):
    name = unique("aio-resume")
    calls = {"one": 0}
    crash = {"on": True}

    async def wf(run, input):
        async def one():
            calls["one"] += 1
            return 1

        v = await run.step("one", one)
        if crash["on"]:
            raise RuntimeError("async crash")
        return v + 1

    async def main():
        tide = AsyncTidebase(url=base_url)
        with pytest.raises(RuntimeError, match="async crash"):
            await tide.run(name, wf)
        runs = await asyncio.to_thread(tide.runs.list)
        run_id = next(r["id"] for r in runs if r["workflowName"] == name)
        crash["on"] = False
        return run_id, await tide.run(name, wf, run_id=run_id)

    run_id, result = asyncio.run(main())
    assert result == 2 and calls["one"] == 1
    from tidebase import Tidebase

    detail = Tidebase(url=base_url).runs.get(run_id)
    assert detail["run"]["status"] == "completed" and detail["run"]["attempt"] == 2
    assert "run.failed" in event_types(detail)
