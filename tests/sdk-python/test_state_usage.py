"""run.state (set/patch/save/versions), run.snapshots, run.usage."""

from __future__ import annotations

import pytest
from tidebase import TidebaseError

from helpers import assert_gap_free, event_types, events_of, unique


def test_state_set_patch_save_versions(tide):
    name = unique("state")
    out = {}

    def wf(run, input):
        out["run_id"] = run.run_id
        out["set1"] = run.state.set({"phase": "draft", "n": 1})
        out["patch"] = run.state.patch({"n": 2, "extra": None})
        out["side"] = run.state.set(
            {"side": True},
            stream="side",
            label="side-1",
            reason="branch",
            importance="checkpoint",
            metadata={"k": "v"},
            created_by="tester",
            unknown_option="ignored by the client",
        )
        out["save"] = run.state.save("pre-publish", reason="before publish")
        out["all"] = run.state.versions()
        out["run_stream"] = run.state.versions(stream="run")
        out["side_stream"] = run.state.versions(stream="side")
        out["labeled"] = run.state.versions(labeled=True)
        out["labeled_false"] = run.state.versions(labeled=False)
        out["labeled_run"] = run.state.versions(stream="run", labeled=True)
        return "ok"

    assert tide.run(name, wf) == "ok"
    run_id = out["run_id"]

    s1 = out["set1"]["state"]
    assert s1["runId"] == run_id and s1["value"] == {"phase": "draft", "n": 1} and s1["version"] == 1
    p = out["patch"]["state"]
    assert p["value"] == {"phase": "draft", "n": 2, "extra": None}  # shallow merge, null kept
    assert p["version"] == 2
    side = out["side"]["state"]
    assert side["value"] == {"side": True} and side["version"] == 3  # live state is per run, not per stream

    saved = out["save"]["stateVersion"]
    assert saved["label"] == "pre-publish" and saved["reason"] == "before publish"
    assert saved["importance"] == "milestone"  # save default
    assert saved["value"] == {"side": True}  # the live value
    assert saved["version"] == 3 and saved["patch"] is None and saved["runId"] == run_id
    assert saved["id"].startswith("ver_")

    run_stream = out["run_stream"]
    assert [v["version"] for v in run_stream] == [1, 2, 3]
    assert [v["value"] for v in run_stream] == [
        {"phase": "draft", "n": 1},
        {"phase": "draft", "n": 2, "extra": None},
        {"side": True},
    ]
    assert [v["patch"] for v in run_stream] == [None, {"n": 2, "extra": None}, None]
    assert [v["label"] for v in run_stream] == [None, None, "pre-publish"]
    assert [v["importance"] for v in run_stream] == ["normal", "normal", "milestone"]
    assert len({v["streamId"] for v in run_stream}) == 1

    (side_v,) = out["side_stream"]
    assert side_v["version"] == 1 and side_v["value"] == {"side": True}
    assert side_v["label"] == "side-1" and side_v["reason"] == "branch"
    assert side_v["importance"] == "checkpoint" and side_v["metadata"] == {"k": "v"}
    assert side_v["createdBy"] == "tester" and side_v["stepId"] is None
    assert side_v["streamId"] != run_stream[0]["streamId"]

    # Unfiltered: stream name ascending ("run" < "side"), then version ascending.
    assert [v["id"] for v in out["all"]] == [v["id"] for v in run_stream] + [side_v["id"]]
    assert sorted(v["label"] for v in out["labeled"]) == ["pre-publish", "side-1"]
    assert len(out["labeled_false"]) == 4  # only labeled=true filters
    assert [v["label"] for v in out["labeled_run"]] == ["pre-publish"]

    detail = tide.runs.get(run_id)
    assert detail["state"]["value"] == {"side": True} and detail["state"]["version"] == 3
    streams = {s["name"]: s for s in detail["stateStreams"]}
    assert set(streams) == {"run", "side"}
    assert streams["run"]["currentVersion"] == 3 and streams["run"]["currentValue"] == {"side": True}
    assert streams["run"]["targetType"] == "run" and streams["run"]["targetId"] == run_id
    assert streams["side"]["currentVersion"] == 1
    assert [v["id"] for v in detail["stateVersions"]] == [v["id"] for v in out["all"]]
    updates = events_of(detail, "state.updated")
    assert len(updates) == 3
    assert updates[0]["payload"]["value"] == {"phase": "draft", "n": 1}
    assert updates[1]["payload"]["patch"] == {"n": 2, "extra": None}
    assert updates[1]["payload"]["value"] == {"phase": "draft", "n": 2, "extra": None}
    assert updates[2]["payload"]["stateVersion"]["label"] == "side-1"
    assert "value" not in updates[2]["payload"]["stateVersion"]  # PublicStateVersion
    saved_ev = events_of(detail, "state.saved")
    assert len(saved_ev) == 1 and saved_ev[0]["payload"]["stateVersion"]["id"] == saved["id"]
    assert_gap_free(detail["events"], run_id)


def test_state_save_without_state_is_404(tide):
    run = tide.runs.create(unique("nostate"))
    from tidebase import RunContext

    ctx = RunContext(tide, run["id"], "owner-1")
    with pytest.raises(TidebaseError) as excinfo:
        ctx.state.save("nothing-yet")
    assert excinfo.value.status == 404
    assert "run state not found" in excinfo.value.body


def test_snapshots_create_and_list(tide):
    name = unique("snap")
    out = {}

    def wf(run, input):
        out["run_id"] = run.run_id
        run.state.set({"live": 1}, label="live-labeled")
        out["snap1"] = run.snapshots.create("draft-v1", {"doc": 1}, reason="first", created_by="me")
        out["snap2"] = run.snapshots.create(
            "doc-v1", {"doc": 2}, target={"type": "document", "id": "d1"}, metadata={"m": 1}
        )
        out["list"] = run.snapshots.list()
        return None

    assert tide.run(name, wf) is None
    run_id = out["run_id"]
    s1 = out["snap1"]["snapshot"]
    assert s1["label"] == "draft-v1" and s1["value"] == {"doc": 1} and s1["reason"] == "first"
    assert s1["importance"] == "milestone" and s1["version"] == 1 and s1["createdBy"] == "me"
    s2 = out["snap2"]["snapshot"]
    assert s2["label"] == "doc-v1" and s2["metadata"] == {"m": 1} and s2["version"] == 1
    assert s2["streamId"] != s1["streamId"]

    listed = out["list"]
    assert sorted(v["label"] for v in listed) == ["doc-v1", "draft-v1", "live-labeled"]
    created = [v["createdAt"] for v in listed]
    assert created == sorted(created, reverse=True), "snapshots must be newest first"

    detail = tide.runs.get(run_id)
    assert detail["state"]["value"] == {"live": 1}  # snapshots don't touch live state
    streams = {s["name"]: s for s in detail["stateStreams"]}
    assert set(streams) == {"run", f"run:{run_id}", "document:d1"}
    assert streams["document:d1"]["targetType"] == "document" and streams["document:d1"]["targetId"] == "d1"
    snap_events = events_of(detail, "snapshot.created")
    assert [e["payload"]["stateVersion"]["id"] for e in snap_events] == [s1["id"], s2["id"]]
    assert_gap_free(detail["events"], run_id)


def test_usage_record_and_total_tokens_derivation(tide):
    name = unique("usage")
    out = {}

    def wf(run, input):
        out["run_id"] = run.run_id
        run.step("llm-call", lambda: "text")
        step_id = tide.runs.get(run.run_id)["steps"][0]["id"]
        out["step_id"] = step_id
        out["u"] = [
            run.usage.record(
                kind="llm",
                provider="openai",
                model="gpt-4.1-mini",
                label="draft",
                input_tokens=1200,
                output_tokens=420,
                cost_usd=0.012,
                step_id=step_id,
                metadata={"attempt": 1},
            ),
            run.usage.record(input_tokens=100),
            run.usage.record(output_tokens=7),
            run.usage.record(kind="llm", input_tokens=10, output_tokens=5, total_tokens=99),
            run.usage.record(kind="compute", quantity=2.5, unit="gpu_seconds"),
            run.usage.record(),
        ]
        return "ok"

    assert tide.run(name, wf) == "ok"
    records = [r["usage"] for r in out["u"]]
    first = records[0]
    assert first["kind"] == "llm" and first["provider"] == "openai" and first["model"] == "gpt-4.1-mini"
    assert first["label"] == "draft" and first["stepId"] == out["step_id"] and first["runId"] == out["run_id"]
    assert first["inputTokens"] == 1200 and first["outputTokens"] == 420 and first["totalTokens"] == 1620
    assert first["costUsd"] == pytest.approx(0.012) and first["metadata"] == {"attempt": 1}
    assert first["id"].startswith("use_")
    assert [r["totalTokens"] for r in records] == [1620, 100, 7, 99, None, None]
    assert records[1]["kind"] == "custom" and records[1]["outputTokens"] is None
    assert records[4]["quantity"] == pytest.approx(2.5) and records[4]["unit"] == "gpu_seconds"
    assert records[5]["kind"] == "custom" and records[5]["metadata"] == {}

    detail = tide.runs.get(out["run_id"])
    assert [u["id"] for u in detail["usage"]] == [r["id"] for r in records]
    assert [e["payload"]["usage"]["id"] for e in events_of(detail, "usage.recorded")] == [r["id"] for r in records]
    assert event_types(detail)[-1] == "run.completed"
    assert_gap_free(detail["events"], out["run_id"])


def test_usage_validation_rejects_negative_tokens(tide):
    run = tide.runs.create(unique("usage-bad"))
    from tidebase import RunContext

    ctx = RunContext(tide, run["id"], "owner-1")
    with pytest.raises(TidebaseError) as excinfo:
        ctx.usage.record(input_tokens=-1)
    assert excinfo.value.status == 400
    assert '"invalid request body"' in excinfo.value.body


def test_usage_optional_numbers_in_any_combination(tide):
    """quantity / costUsd present or absent in any order across many records
    (every pooled server connection sees every combination)."""
    run = tide.runs.create(unique("usage-mix"))
    from tidebase import RunContext

    ctx = RunContext(tide, run["id"], "owner-1")
    combos = [
        {"cost_usd": 0.5},
        {"quantity": 2.5, "unit": "s"},
        {"cost_usd": 0.25, "quantity": 1.5},
        {"input_tokens": 3},
    ]
    failures = []
    for round_ in range(12):
        for combo in combos:
            try:
                usage = ctx.usage.record(kind="mix", **combo)["usage"]
                assert usage["costUsd"] == combo.get("cost_usd")
                assert usage["quantity"] == combo.get("quantity")
            except TidebaseError as e:
                failures.append(f"round {round_} {combo}: {e.status} {e.body}")
    assert not failures, f"{len(failures)} of {12 * len(combos)} usage records failed, e.g. {failures[:3]}"
    assert len(tide.runs.get(run["id"])["usage"]) == 12 * len(combos)
