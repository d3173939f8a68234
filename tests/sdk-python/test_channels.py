"""tide.run(..., channels=[...]): stored webhook channels receive signed
deliveries of the subscribed event types (http-api.md §4.2), sent before the
triggering call returns, so the rows are final in the run detail read right
after it (semantics.md §16); the SDK's verify_webhook_signature accepts them.
Module helpers without HTTP."""

from __future__ import annotations

import re

from tidebase import new_run_id, verify_webhook_signature

from helpers import assert_gap_free, unique

SECRET = "channel-secret-1"


def test_run_channels_receive_signed_deliveries(tide, webhook_receiver):
    name = unique("channels")
    seen = {}
    channel = {"type": "webhook", "url": webhook_receiver.url, "secret": SECRET, "events": ["state.updated", "run.completed"]}

    def wf(run, input):
        seen["run_id"] = run.run_id
        run.step("s", lambda: 1)
        run.state.set({"progress": 1})
        # state.set returned: its delivery was sent and recorded.
        seen["after_set"] = tide.runs.get(run.run_id)["channelDeliveries"]
        seen["sent_after_set"] = len(webhook_receiver.requests)
        run.usage.record(input_tokens=1)  # not subscribed: no delivery
        return {"done": True}

    assert tide.run(name, wf, channels=[channel]) == {"done": True}
    run_id = seen["run_id"]
    assert [(d["eventType"], d["status"], d["httpStatus"]) for d in seen["after_set"]] == [
        ("state.updated", "delivered", 200)
    ]
    assert seen["sent_after_set"] == 1

    # run() returned after its complete call, which waited for run.completed's delivery.
    detail = tide.runs.get(run_id)
    requests = list(webhook_receiver.requests)
    assert len(requests) == 2, [r["raw"][:80] for r in requests]
    envelopes = webhook_receiver.bodies()
    assert sorted(e["type"] for e in envelopes) == ["run.completed", "state.updated"]
    for req, env in zip(requests, envelopes):
        assert req["headers"]["user-agent"] == "tidebase-channel/0.3.0"
        signature = req["headers"].get("x-tidebase-signature", "")
        assert signature.startswith("sha256="), signature
        assert verify_webhook_signature(req["raw"], signature, SECRET)
        assert not verify_webhook_signature(req["raw"], signature, "wrong-secret")
        assert env["runId"] == run_id and env["gateId"] is None and env["deliveryId"].startswith("del_")
    by_type = {e["type"]: e for e in envelopes}
    assert by_type["run.completed"]["payload"]["run"]["id"] == run_id
    assert by_type["run.completed"]["payload"]["run"]["status"] == "completed"
    assert by_type["state.updated"]["payload"]["state"]["value"] == {"progress": 1}

    (stored,) = detail["channels"]
    assert stored["id"].startswith("chan_") and stored["runId"] == run_id and stored["type"] == "webhook"
    assert stored["config"] == {"url": webhook_receiver.url, "secret": SECRET}
    assert stored["events"] == ["state.updated", "run.completed"]
    assert sorted((d["eventType"], d["status"], d["httpStatus"]) for d in detail["channelDeliveries"]) == [
        ("run.completed", "delivered", 200),
        ("state.updated", "delivered", 200),
    ]
    assert {d["id"] for d in detail["channelDeliveries"]} == {e["deliveryId"] for e in envelopes}
    created = detail["events"][0]
    assert created["payload"]["channels"] == [
        {"type": "webhook", "url": webhook_receiver.url, "events": ["state.updated", "run.completed"]}
    ], "run.created lists channels without their secret"
    assert_gap_free(detail["events"], run_id)


def test_module_helpers_without_http():
    assert re.fullmatch(r"run_[0-9a-f]{32}", new_run_id())
    assert new_run_id() != new_run_id()
    import hashlib
    import hmac

    body = b'{"type":"run.resume"}'
    digest = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert verify_webhook_signature(body, "sha256=" + digest, "k")
    assert verify_webhook_signature(body, digest, "k")
    assert not verify_webhook_signature(body, "", "k")
