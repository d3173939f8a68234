"""tide.runs: create/get/list/cancel/recover."""

from __future__ import annotations

import pytest
from tidebase import TidebaseError

from helpers import assert_gap_free, event_types, events_of, unique, wait_until


def test_create_get_list(tide):
    name = unique("create")
    run = tide.runs.create(name, input={"a": 1}, metadata={"m": 2})
    assert run["id"].startswith("run_") and len(run["id"]) == 36
    assert run["workflowName"] == name and run["status"] == "pending"
    assert run["input"] == {"a": 1} and run["metadata"] == {"m": 2}
    assert run["attempt"] == 0 and run["maxAttempts"] == 1 and run["priority"] == 0
    assert run["queue"] is None and run["runAt"] is None and run["result"] is None
    assert run["createdAt"].endswith("Z")

    bare = tide.runs.create(unique("bare"))
    assert bare["input"] == {} and bare["metadata"] == {}

    detail = tide.runs.get(run["id"])
    assert detail["run"] == run
    for key, empty in (
        ("steps", []),
        ("state", None),
        ("stateStreams", []),
        ("stateVersions", []),
        ("runEdges", []),
        ("childRuns", []),
        ("recoveryAttempts", []),
        ("channels", []),
        ("channelDeliveries", []),
        ("gates", []),
        ("usage", []),
    ):
        assert detail[key] == empty, key
    assert event_types(detail) == ["run.created"]
    assert detail["events"][0]["payload"] == {"workflowName": name, "input": {"a": 1}, "channels": []}

    listed = tide.runs.list()
    ids = [r["id"] for r in listed]
    assert run["id"] in ids and bare["id"] in ids
    assert ids.index(bare["id"]) < ids.index(run["id"]), "newest first"
    assert len(listed) <= 100


def test_workflow_name_is_percent_encoded_and_decoded(tide):
    name = unique("my wf/with?odd#chars")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        return name

    assert tide.run(name, wf) == name
    assert tide.runs.get(seen["id"])["run"]["workflowName"] == name


def test_cancel_twice_is_idempotent(tide):
    run = tide.runs.create(unique("cancel"))
    first = tide.runs.cancel(run["id"], reason="not needed", actor="ops")
    assert first["status"] == "cancelled"
    assert first["cancelReason"] == "not needed" and first["cancelActor"] == "ops"
    assert first["cancelRequestedAt"] is not None and first["cancelledAt"] is not None
    assert first["completedAt"] is not None

    second = tide.runs.cancel(run["id"], reason="again", actor="someone-else")
    assert second["status"] == "cancelled"
    assert second["cancelReason"] == "not needed" and second["cancelActor"] == "ops"
    assert second["cancelledAt"] == first["cancelledAt"]

    no_body = tide.runs.cancel(run["id"])
    assert no_body["cancelReason"] == "not needed"

    detail = tide.runs.get(run["id"])
    assert event_types(detail) == ["run.created", "run.cancelled"]
    assert detail["events"][1]["payload"] == {"reason": "not needed", "actor": "ops"}


def test_cancel_without_reason_records_nulls(tide):
    run = tide.runs.create(unique("cancel-bare"))
    cancelled = tide.runs.cancel(run["id"])
    assert cancelled["cancelReason"] is None and cancelled["cancelActor"] is None
    assert events_of(tide.runs.get(run["id"]), "run.cancelled")[0]["payload"] == {"reason": None, "actor": None}


def test_cancel_completed_run_is_409(tide):
    name = unique("cancel-done")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        return 42

    assert tide.run(name, wf) == 42
    with pytest.raises(TidebaseError) as excinfo:
        tide.runs.cancel(seen["id"], reason="too late")
    assert excinfo.value.status == 409
    assert "run already completed" in excinfo.value.body
    assert excinfo.value.path == f"/runs/{seen['id']}/cancel"
    detail = tide.runs.get(seen["id"])
    assert detail["run"]["status"] == "completed" and detail["run"]["result"] == 42
    assert "run.cancelled" not in event_types(detail)


def test_cancel_failed_run_is_allowed(tide):
    name = unique("cancel-failed")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        raise KeyError("missing")

    with pytest.raises(KeyError):
        tide.run(name, wf)
    assert tide.runs.cancel(seen["id"])["status"] == "cancelled"


def test_cancel_unknown_run_is_404(tide):
    with pytest.raises(TidebaseError) as excinfo:
        tide.runs.cancel("run_" + "1" * 32)
    assert excinfo.value.status == 404


def test_recover_without_webhook_is_422(tide):
    run = tide.runs.create(unique("recover-none"))
    with pytest.raises(TidebaseError) as excinfo:
        tide.runs.recover(run["id"])
    assert excinfo.value.status == 422
    assert "run has no recoveryWebhook configured" in excinfo.value.body
    assert tide.runs.get(run["id"])["recoveryAttempts"] == []


def test_recover_with_webhook_delivers_run_resume(tide, webhook_receiver):
    name = unique("recover")
    run = tide.runs.create(name, recovery_webhook=webhook_receiver.url)
    assert run["recoveryWebhook"] == webhook_receiver.url

    response = tide.runs.recover(run["id"], reason="operator-retry")
    attempt = response["recoveryAttempt"]
    assert attempt["status"] == "delivered"
    assert attempt["httpStatus"] == 200
    assert attempt["reason"] == "operator-retry"
    assert attempt["webhookUrl"] == webhook_receiver.url
    assert attempt["runId"] == run["id"] and attempt["id"].startswith("rec_")
    assert attempt["responseBody"] == '{"accepted":true}'
    assert attempt["errorText"] is None and attempt["completedAt"] is not None

    (request,) = webhook_receiver.requests
    assert request["path"] == "/hook"
    assert request["headers"]["content-type"].startswith("application/json")
    assert request["headers"]["user-agent"] == "tidebase-recovery/0.5.0"
    assert "x-tidebase-signature" not in request["headers"]  # no TIDEBASE_WEBHOOK_SECRET
    (body,) = webhook_receiver.bodies()
    assert body == {
        "type": "run.resume",
        "runId": run["id"],
        "workflowName": name,
        "reason": "operator-retry",
        "attempt": 0,
    }
    assert b'"type":"run.resume"' in request["raw"]  # compact JSON

    default = tide.runs.recover(run["id"])["recoveryAttempt"]
    assert default["reason"] == "manual"

    detail = tide.runs.get(run["id"])
    assert [a["id"] for a in detail["recoveryAttempts"]] == [default["id"], attempt["id"]]  # newest first
    assert event_types(detail) == [
        "run.created",
        "recovery.started",
        "recovery.delivered",
        "recovery.started",
        "recovery.delivered",
    ]
    started = events_of(detail, "recovery.started")[0]["payload"]
    assert started == {"recoveryAttemptId": attempt["id"], "reason": "operator-retry"}
    delivered = events_of(detail, "recovery.delivered")[0]["payload"]
    assert delivered == {"recoveryAttemptId": attempt["id"], "httpStatus": 200}
    assert_gap_free(detail["events"], run["id"])


def test_recover_to_failing_webhook_is_still_200(tide):
    from helpers import WebhookReceiver

    receiver = WebhookReceiver(status=503, body=b"busy")
    try:
        run = tide.runs.create(unique("recover-503"), recovery_webhook=receiver.url)
        attempt = tide.runs.recover(run["id"])["recoveryAttempt"]
        assert attempt["status"] == "failed" and attempt["httpStatus"] == 503
        assert attempt["responseBody"] == "busy"
        assert event_types(tide.runs.get(run["id"]))[-1] == "recovery.failed"
    finally:
        receiver.close()


def test_failed_run_fires_recovery_webhook(tide, webhook_receiver):
    name = unique("recover-auto")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        tide.run(name, wf, recovery_webhook=webhook_receiver.url)
    # tidebase-host sends the webhook after the fail response (see
    # docs/compatibility.md), so poll (bounded) for the call and its record.
    wait_until(lambda: webhook_receiver.requests, 10, "the run_failed recovery webhook")
    (body,) = webhook_receiver.bodies()
    assert body == {"type": "run.resume", "runId": seen["id"], "workflowName": name, "reason": "run_failed", "attempt": 1}
    detail = wait_until(
        lambda: (d := tide.runs.get(seen["id"]))["recoveryAttempts"]
        and d["recoveryAttempts"][0]["status"] != "pending"
        and d,
        10,
        "the recorded recovery attempt",
    )
    assert detail["run"]["status"] == "failed"
    assert detail["recoveryAttempts"][0]["reason"] == "run_failed"
    assert detail["recoveryAttempts"][0]["status"] == "delivered"
    types = event_types(detail)
    assert types[-3:] == ["run.failed", "recovery.started", "recovery.delivered"]
