"""tide.run(): happy path, crash + resume, client-driven step retries, input drift."""

from __future__ import annotations

from collections import Counter

import pytest
from tidebase import TidebaseError

from helpers import assert_gap_free, event_types, events_of, stable_hash, step_by_name, unique


def test_run_happy_path_returns_value_and_records_events(tide):
    name = unique("happy")
    seen = {}

    def wf(run, input):
        seen["run_id"] = run.run_id
        a = run.step("add", lambda: input["x"] + 1)
        b = run.step("double", lambda: a * 2, input={"a": a})
        return {"value": b}

    result = tide.run(name, wf, input={"x": 2}, metadata={"team": "sdk"})
    assert result == {"value": 6}

    detail = tide.runs.get(seen["run_id"])
    run = detail["run"]
    assert run["id"] == seen["run_id"] and run["id"].startswith("run_")
    assert run["workflowName"] == name
    assert run["status"] == "completed"
    assert run["result"] == {"value": 6}
    assert run["error"] is None
    assert run["input"] == {"x": 2}
    assert run["metadata"] == {"team": "sdk"}
    assert run["attempt"] == 1
    assert run["leaseOwner"] is None and run["leaseExpiresAt"] is None
    assert run["completedAt"] is not None

    assert [s["name"] for s in detail["steps"]] == ["add", "double"]
    add, double = detail["steps"]
    assert add["status"] == "completed" and add["output"] == 3 and add["attempt"] == 1
    assert add["inputHash"] == stable_hash(None)
    assert add["input"] == {}  # null input is stored as {}
    assert add["options"] == {}
    assert double["status"] == "completed" and double["output"] == 6 and double["attempt"] == 1
    assert double["inputHash"] == stable_hash({"a": 3})
    assert double["input"] == {"a": 3}
    assert double["options"] == {"input": {"a": 3}}
    for s in detail["steps"]:
        assert s["runId"] == run["id"] and s["leaseOwner"] is None and s["completedAt"] is not None

    assert event_types(detail) == [
        "run.created",
        "run.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "run.completed",
    ]
    assert_gap_free(detail["events"], run["id"])
    created = detail["events"][0]["payload"]
    assert created["workflowName"] == name and created["input"] == {"x": 2}
    assert detail["events"][-1]["payload"] == {"result": {"value": 6}}
    started = events_of(detail, "step.started")
    assert [(e["payload"]["name"], e["payload"]["attempt"]) for e in started] == [("add", 1), ("double", 1)]
    assert started[0]["payload"]["stepId"] == add["id"]

    # runs.list() sees it; a completed run short-circuits on re-run (no new events).
    assert run["id"] in [r["id"] for r in tide.runs.list()]
    assert tide.run(name, wf, run_id=run["id"]) == {"value": 6}
    assert len(tide.runs.get(run["id"])["events"]) == len(detail["events"])


def test_run_with_wrong_workflow_name_is_refused_by_client(tide):
    name = unique("named")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        return 1

    tide.run(name, wf)
    with pytest.raises(ValueError, match="belongs to workflow"):
        tide.run(name + "-other", wf, run_id=seen["id"])


def test_resume_after_crash_skips_completed_steps(tide):
    name = unique("resume")
    calls = Counter()
    crash = {"on": True}
    seen = {}

    def counted(step, value):
        def fn():
            calls[step] += 1
            return value

        return fn

    def wf(run, input):
        seen["run_id"] = run.run_id
        one = run.step("one", counted("one", input["base"] + 1))
        two = run.step("two", counted("two", one * 10))
        if crash["on"]:
            raise RuntimeError("simulated crash after step two")
        three = run.step("three", counted("three", two + 5))
        return {"one": one, "two": two, "three": three}

    with pytest.raises(RuntimeError, match="simulated crash"):
        tide.run(name, wf, input={"base": 1})
    run_id = seen["run_id"]

    failed = tide.runs.get(run_id)
    assert failed["run"]["status"] == "failed"
    assert failed["run"]["error"] == {"name": "RuntimeError", "message": "simulated crash after step two"}
    assert failed["run"]["leaseOwner"] is None
    assert failed["run"]["completedAt"] is None
    assert event_types(failed)[-1] == "run.failed"
    assert failed["events"][-1]["payload"]["error"] == failed["run"]["error"]
    assert [s["status"] for s in failed["steps"]] == ["completed", "completed"]

    crash["on"] = False
    result = tide.run(name, wf, run_id=run_id)
    assert result == {"one": 2, "two": 20, "three": 25}
    assert calls == Counter({"one": 1, "two": 1, "three": 1}), f"steps re-executed: {calls}"

    detail = tide.runs.get(run_id)
    assert detail["run"]["status"] == "completed"
    assert detail["run"]["result"] == result
    assert detail["run"]["attempt"] == 2
    assert [(s["name"], s["status"], s["attempt"]) for s in detail["steps"]] == [
        ("one", "completed", 1),
        ("two", "completed", 1),
        ("three", "completed", 1),
    ]
    assert event_types(detail) == [
        "run.created",
        "run.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "run.failed",
        "run.started",
        "step.started",
        "step.completed",
        "run.completed",
    ]
    assert_gap_free(detail["events"], run_id)
    assert [e["payload"]["name"] for e in events_of(detail, "step.started")] == ["one", "two", "three"]


def test_step_retries_until_success(tide):
    name = unique("retry")
    attempts = []
    seen = {}

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError(f"transient {len(attempts)}")
        return {"ok": True}

    def wf(run, input):
        seen["run_id"] = run.run_id
        return run.step("flaky", flaky, retries=2)

    assert tide.run(name, wf) == {"ok": True}
    assert len(attempts) == 3

    detail = tide.runs.get(seen["run_id"])
    assert detail["run"]["status"] == "completed"
    step = step_by_name(detail, "flaky")
    assert step["status"] == "completed"
    assert step["attempt"] == 3
    assert step["output"] == {"ok": True}
    assert step["error"] is None  # cleared on completion
    assert step["options"] == {"retries": 2}

    assert event_types(detail) == [
        "run.created",
        "run.started",
        "step.started",
        "step.failed",
        "step.started",
        "step.failed",
        "step.started",
        "step.completed",
        "run.completed",
    ]
    assert_gap_free(detail["events"], seen["run_id"])
    assert [e["payload"]["attempt"] for e in events_of(detail, "step.started")] == [1, 2, 3]
    fails = events_of(detail, "step.failed")
    assert len(fails) == 2
    for i, ev in enumerate(fails, start=1):
        p = ev["payload"]
        assert p["retryable"] is True
        assert p["resumeDecision"] == "auto_retry"
        assert p["name"] == "flaky" and p["stepId"] == step["id"]
        assert p["error"] == {"name": "ConnectionError", "message": f"transient {i}"}


def test_step_retries_exhausted_fails_step_and_run(tide):
    name = unique("retry-exhausted")
    seen = {}
    calls = []

    def always():
        calls.append(1)
        raise TimeoutError(f"down {len(calls)}")

    def wf(run, input):
        seen["run_id"] = run.run_id
        return run.step("always", always, retries=2)

    with pytest.raises(TimeoutError, match="down 3"):
        tide.run(name, wf)
    assert len(calls) == 3

    detail = tide.runs.get(seen["run_id"])
    step = step_by_name(detail, "always")
    assert step["attempt"] == 3
    assert step["status"] == "failed"  # safe_replay → failed
    assert step["error"] == {"name": "TimeoutError", "message": "down 3"}
    fails = events_of(detail, "step.failed")
    assert [f["payload"]["retryable"] for f in fails] == [True, True, False]
    assert [f["payload"]["resumeDecision"] for f in fails] == ["auto_retry", "auto_retry", "safe_replay"]
    assert detail["run"]["status"] == "failed"
    assert detail["run"]["error"] == {"name": "TimeoutError", "message": "down 3"}
    assert event_types(detail)[-1] == "run.failed"
    assert_gap_free(detail["events"], seen["run_id"])


def test_input_drift_on_resume_raises_value_error_with_hashes(tide):
    name = unique("drift")
    seen = {}
    state = {"input": {"v": 1}, "crash": True}
    calls = Counter()

    def wf(run, input):
        seen["run_id"] = run.run_id

        def fn():
            calls["s"] += 1
            return "out"

        out = run.step("s", fn, input=state["input"])
        if state["crash"]:
            raise RuntimeError("crash")
        return out

    with pytest.raises(RuntimeError, match="crash"):
        tide.run(name, wf)
    run_id = seen["run_id"]
    before = tide.runs.get(run_id)

    state["input"] = {"v": 2}
    state["crash"] = False
    expected, actual = stable_hash({"v": 1}), stable_hash({"v": 2})
    with pytest.raises(ValueError) as excinfo:
        tide.run(name, wf, run_id=run_id)
    message = str(excinfo.value)
    assert expected in message and actual in message, message
    assert message.index(expected) < message.index(actual), "expected hash should be the stored one"
    assert calls["s"] == 1, "step fn must not run on an input mismatch"

    detail = tide.runs.get(run_id)
    step = step_by_name(detail, "s")
    assert step["inputHash"] == expected
    assert step["input"] == {"v": 1}
    assert step["status"] == "completed" and step["attempt"] == 1 and step["output"] == "out"
    assert len(events_of(detail, "step.started")) == len(events_of(before, "step.started")) == 1
    # The ValueError escaped the workflow, so the client reported the run failure.
    assert detail["run"]["status"] == "failed"
    assert detail["run"]["error"]["name"] == "ValueError"
    assert_gap_free(detail["events"], run_id)


def test_get_unknown_run_is_404(tide):
    with pytest.raises(TidebaseError) as excinfo:
        tide.runs.get("run_" + "0" * 32)
    assert excinfo.value.status == 404
    assert '"run not found"' in excinfo.value.body
