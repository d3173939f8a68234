"""API-key auth (TIDEBASE_API_KEY on the server): http-api.md §1.3."""

from __future__ import annotations

import pytest
from tidebase import Tidebase, TidebaseError

from helpers import assert_gap_free, event_types, http, unique


def test_client_without_key_gets_401(auth_server):
    anonymous = Tidebase(url=auth_server.url)
    with pytest.raises(TidebaseError) as excinfo:
        anonymous.runs.list()
    assert excinfo.value.status == 401
    assert excinfo.value.body.strip() == '{"error":"unauthorized"}' or '"unauthorized"' in excinfo.value.body
    with pytest.raises(TidebaseError) as excinfo:
        anonymous.runs.create(unique("noauth"))
    assert excinfo.value.status == 401

    def wf(run, input):
        return 1

    with pytest.raises(TidebaseError) as excinfo:
        anonymous.run(unique("noauth-run"), wf)
    assert excinfo.value.status == 401


def test_client_with_wrong_key_gets_401(auth_server, api_key):
    wrong = Tidebase(url=auth_server.url, api_key=api_key + "x")
    with pytest.raises(TidebaseError) as excinfo:
        wrong.runs.list()
    assert excinfo.value.status == 401


def test_client_with_key_works_end_to_end(tide_auth):
    name = unique("auth-run")
    seen = {}

    def wf(run, input):
        seen["id"] = run.run_id
        v = run.step("s", lambda: input["n"] * 2, retries=1)
        run.state.set({"v": v})
        run.usage.record(input_tokens=1, output_tokens=2)
        return v

    assert tide_auth.run(name, wf, input={"n": 21}) == 42
    detail = tide_auth.runs.get(seen["id"])
    assert detail["run"]["status"] == "completed"
    assert event_types(detail) == [
        "run.created",
        "run.started",
        "step.started",
        "step.completed",
        "state.updated",
        "usage.recorded",
        "run.completed",
    ]
    assert_gap_free(detail["events"], seen["id"])
    assert seen["id"] in [r["id"] for r in tide_auth.runs.list()]


def test_health_is_open_without_key(auth_server):
    status, body, headers = http("GET", auth_server.url + "/health")
    assert status == 200 and body == {"ok": True}
    assert headers.get("content-type", "").startswith("application/json")


def test_auth_details(auth_server, api_key):
    base = auth_server.url
    run = Tidebase(url=base, api_key=api_key).runs.create(unique("auth-details"))
    # lower-case scheme is rejected; exact "Bearer " prefix required
    status, body, _ = http("GET", f"{base}/runs/{run['id']}", headers={"authorization": f"bearer {api_key}"})
    assert status == 401 and body == {"error": "unauthorized"}
    status, _, _ = http("GET", f"{base}/runs/{run['id']}", headers={"authorization": f"Bearer {api_key}"})
    assert status == 200
    # ?token= works only on the SSE endpoint
    status, _, _ = http("GET", f"{base}/runs/{run['id']}?token={api_key}")
    assert status == 401
    # gate resolve is not exempt; unknown paths are 401 before routing
    status, _, _ = http("POST", f"{base}/runs/{run['id']}/gates/gate_x/resolve", {"token": "t", "decision": "approved"})
    assert status == 401
    status, _, _ = http("GET", f"{base}/no-such-path")
    assert status == 401
