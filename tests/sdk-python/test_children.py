"""run.child() and run.fanout(): children created once, join step recorded,
re-running the parent reuses the existing children."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from helpers import assert_gap_free, event_types, events_of, stable_hash, step_by_name, unique


def test_child_and_fanout_create_children_once(tide):
    parent_name = unique("parent")
    child_name = unique("child")
    seen = {}
    calls = Counter()
    lock = threading.Lock()
    state = {"crash": True}

    def child_wf(run, input):
        def work():
            with lock:
                calls[input["n"]] += 1
            return input["n"] * 10

        return run.step("work", work)

    def parent_wf(run, input):
        seen["run_id"] = run.run_id
        single = run.child(child_name, child_wf, name="solo", input={"n": 1}, metadata={"owner": "me"})
        fanned = run.fanout(
            "fan",
            [
                {"name": "shard-a", "workflow": child_wf, "workflow_name": child_name, "input": {"n": 2}},
                {"name": "shard-b", "workflow": child_wf, "workflow_name": child_name, "input": {"n": 3}},
            ],
        )
        if state["crash"]:
            raise RuntimeError("parent crashed after the join")
        return {"single": single, "fanned": fanned}

    with pytest.raises(RuntimeError, match="parent crashed"):
        tide.run(parent_name, parent_wf)
    parent_id = seen["run_id"]

    first = tide.runs.get(parent_id)
    assert first["run"]["status"] == "failed"
    edges = {e["name"]: e for e in first["runEdges"]}
    assert set(edges) == {"solo", "shard-a", "shard-b"}
    assert edges["solo"]["edgeType"] == "child" and edges["solo"]["metadata"] == {}
    for shard in ("shard-a", "shard-b"):
        assert edges[shard]["edgeType"] == "fanout"
        assert edges[shard]["metadata"] == {"fanout": "fan"}
    for e in first["runEdges"]:
        assert e["parentRunId"] == parent_id and e["id"].startswith("edge_")
    children = {c["id"]: c for c in first["childRuns"]}
    assert len(children) == 3
    assert [c["id"] for c in first["childRuns"]] == [e["childRunId"] for e in first["runEdges"]]
    for edge_name, n in (("solo", 1), ("shard-a", 2), ("shard-b", 3)):
        child = children[edges[edge_name]["childRunId"]]
        assert child["workflowName"] == child_name
        assert child["status"] == "completed"
        assert child["result"] == n * 10
        assert child["input"] == {"n": n}
        assert child["metadata"]["parentRunId"] == parent_id
        assert child["metadata"]["parentEdgeName"] == edge_name
    assert children[edges["solo"]["childRunId"]]["metadata"]["owner"] == "me"

    join = step_by_name(first, "join:fan")
    assert join["status"] == "completed"
    assert join["output"] == [20, 30]
    join_input = {"fanout": "fan", "join": "all", "children": ["shard-a", "shard-b"]}
    assert join["input"] == join_input
    assert join["inputHash"] == stable_hash(join_input)
    assert join["options"] == {
        "input": join_input,
        "replay": "auto",
        "checkpointInvariant": "all child run results were collected",
    }
    assert join["resumeContract"]["checkpointInvariant"] == "all child run results were collected"
    assert len(events_of(first, "run.child.created")) == 3
    child_created = {e["payload"]["edge"]["name"]: e["payload"] for e in events_of(first, "run.child.created")}
    assert child_created["solo"]["childRun"]["id"] == edges["solo"]["childRunId"]

    # The child's own log starts with run.created carrying the parent link.
    solo = tide.runs.get(edges["solo"]["childRunId"])
    created = solo["events"][0]
    assert created["type"] == "run.created"
    assert created["payload"]["parentRunId"] == parent_id and created["payload"]["edgeName"] == "solo"
    assert event_types(solo) == ["run.created", "run.started", "step.started", "step.completed", "run.completed"]
    assert_gap_free(solo["events"], solo["run"]["id"])

    # Resume the parent: same children, no new edges, no child step re-executed.
    state["crash"] = False
    result = tide.run(parent_name, parent_wf, run_id=parent_id)
    assert result == {"single": 10, "fanned": [20, 30]}
    assert calls == Counter({1: 1, 2: 1, 3: 1}), f"child steps re-executed: {calls}"

    detail = tide.runs.get(parent_id)
    assert detail["run"]["status"] == "completed"
    assert [e["id"] for e in detail["runEdges"]] == [e["id"] for e in first["runEdges"]]
    assert [c["id"] for c in detail["childRuns"]] == [c["id"] for c in first["childRuns"]]
    assert len(events_of(detail, "run.child.created")) == 3
    assert step_by_name(detail, "join:fan")["attempt"] == 1
    child_runs = [r for r in tide.runs.list() if r["workflowName"] == child_name]
    assert len(child_runs) == 3
    assert_gap_free(detail["events"], parent_id)


def test_child_with_explicit_checkpoint_name(tide):
    parent_name = unique("parent-ck")
    seen = {}

    def leaf(run, input):
        return run.step("leaf", lambda: input["v"])

    def parent_wf(run, input):
        seen["run_id"] = run.run_id
        return run.fanout(
            "f",
            [{"name": "x", "workflow": leaf, "input": {"v": "X"}}, {"name": "y", "workflow": leaf, "input": {"v": "Y"}}],
            checkpoint="collect",
        )

    assert tide.run(parent_name, parent_wf) == ["X", "Y"]
    detail = tide.runs.get(seen["run_id"])
    assert [s["name"] for s in detail["steps"]] == ["join:collect"]
    # Without workflow_name the child's workflow name is the entry name.
    assert sorted(c["workflowName"] for c in detail["childRuns"]) == ["x", "y"]
