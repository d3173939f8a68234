"""Studio in a real Chromium against a real server: a wasm run parked at its
gate and an SDK-driven run side by side, a gate approved in the page and
the run completing live, events arriving over SSE, the other views, and
the API-key sign-in."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import deploy
from helpers import http, unique, wait_until

WAIT_MS = 20_000
WAIT_S = WAIT_MS / 1000


def parked_at_gate(base_url: str, run_id: str, headers=None) -> dict:
    def find():
        _, detail, _ = http("GET", f"{base_url}/runs/{run_id}", headers=headers)
        pending = [g for g in detail["gates"] if g["status"] == "pending"]
        return pending and detail["run"]["leaseOwner"] is None and pending[0]

    return wait_until(find, WAIT_S, f"run {run_id} to park at its gate")


def start_report(base_url: str, key: str | None = None) -> tuple[str, str]:
    """A wasm `report` run, parked at its gate `approve-report`."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    workflow = unique("report")
    deploy(base_url, workflow, "report", key)
    status, body, _ = http("POST", f"{base_url}/runs/{workflow}", {"input": {"topic": "tides"}}, headers)
    assert status == 200, body
    run_id = body["run"]["id"]
    parked_at_gate(base_url, run_id, headers)
    return workflow, run_id


def sdk_run(base_url: str) -> tuple[str, str]:
    """A run driven by the real Python client, to completion."""
    from tidebase import Tidebase

    tide = Tidebase(url=base_url)
    workflow = unique("sdk")
    seen = {}

    def flow(run, input):
        seen["id"] = run.run_id
        run.state.set({"phase": "counting"})
        return run.step("count", lambda: input["n"] + 1)

    assert tide.run(workflow, flow, input={"n": 41}) == 42
    return workflow, seen["id"]


def test_runs_lists_wasm_and_sdk_runs_alike(server, page, screenshots):
    wasm_workflow, wasm_run = start_report(server.url)
    sdk_workflow, sdk_run_id = sdk_run(server.url)

    page.goto(f"{server.url}/#/runs")
    rows = page.locator("#runs-list tbody tr")
    wasm_row = rows.filter(has_text=wasm_run)
    sdk_row = rows.filter(has_text=sdk_run_id)
    expect(wasm_row).to_contain_text(wasm_workflow, timeout=WAIT_MS)
    expect(sdk_row).to_contain_text(sdk_workflow)
    expect(sdk_row).to_contain_text("completed")
    expect(wasm_row).to_contain_text("waiting at gate approve-report")
    page.screenshot(path=screenshots / "runs.png", full_page=True)

    # Filters go through the API: only the SDK workflow's run is left.
    page.get_by_label("Workflow").fill(sdk_workflow)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(f"workflow={sdk_workflow}"))
    expect(rows.filter(has_text=sdk_run_id)).to_have_count(1, timeout=WAIT_MS)
    expect(rows.filter(has_text=wasm_run)).to_have_count(0)


def test_approving_the_gate_in_the_page_completes_the_run_live(server, page, screenshots):
    _, run_id = start_report(server.url)
    page.goto(f"{server.url}/#/runs/{run_id}")
    gate = page.locator(".card.gate").filter(has_text="approve-report")
    expect(gate).to_contain_text('Write the report on "tides"', timeout=WAIT_MS)
    expect(page.locator(".live")).to_have_text("● live", timeout=WAIT_MS)
    page.screenshot(path=screenshots / "run.png", full_page=True)
    # A reload would lose this marker.
    page.evaluate("window.__sameDocument = true")

    gate.get_by_label("Your name").fill("Ada")
    gate.get_by_label("Note (optional)").fill("ship it")
    gate.get_by_role("button", name="Approve").click()

    summary = page.locator("dl.summary")
    expect(summary).to_contain_text("completed", timeout=WAIT_MS)
    expect(page.locator(".card.gate")).to_contain_text("approved by Ada")
    expect(page.locator("ol.events")).to_contain_text("run.completed")
    expect(page.locator("ol.timeline")).to_contain_text("write-report")
    assert page.evaluate("window.__sameDocument") is True

    _, detail, _ = http("GET", f"{server.url}/runs/{run_id}")
    assert detail["run"]["status"] == "completed"
    assert detail["run"]["result"]["approvedBy"] == "Ada"
    assert detail["run"]["result"]["reviewerNote"] == "ship it"


def test_events_appear_live_and_cancel_works(server, page):
    """A run driven over raw HTTP, as an SDK worker drives it: each call's
    event shows up in the open page; then the page cancels it."""
    workflow = unique("live")
    _, body, _ = http("POST", f"{server.url}/runs/{workflow}", {"input": {}})
    run_id = body["run"]["id"]
    page.goto(f"{server.url}/#/runs/{run_id}")
    events = page.locator("ol.events")
    expect(events).to_contain_text("run.created", timeout=WAIT_MS)
    expect(page.locator(".live")).to_have_text("● live", timeout=WAIT_MS)
    expect(events).not_to_contain_text("run.started")

    status, begun, _ = http("POST", f"{server.url}/runs/{run_id}/begin", {})
    assert status == 200, begun
    expect(events).to_contain_text("run.started", timeout=WAIT_MS)
    status, _, _ = http("PUT", f"{server.url}/runs/{run_id}/state", {"value": {"tide": "rising"}})
    assert status == 200
    expect(events).to_contain_text("state.updated", timeout=WAIT_MS)
    expect(page.locator("section", has_text="Live state")).to_contain_text("rising")
    expect(page.locator("dl.summary")).to_contain_text("running")

    page.get_by_label("Reason").fill("enough")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("dl.summary")).to_contain_text("cancelled", timeout=WAIT_MS)
    expect(events).to_contain_text("run.cancelled")
    _, detail, _ = http("GET", f"{server.url}/runs/{run_id}")
    assert detail["run"]["cancelReason"] == "enough"


def test_children_form_a_tree_with_links(server, page):
    deploy(server.url, "child-echo", "child_echo")
    parent = unique("fanout")
    deploy(server.url, parent, "fanout_parent")
    _, body, _ = http("POST", f"{server.url}/runs/{parent}", {"input": {"values": [1, 2], "sleepMs": 10}})
    run_id = body["run"]["id"]
    page.goto(f"{server.url}/#/runs/{run_id}")
    expect(page.locator("dl.summary")).to_contain_text("completed", timeout=WAIT_MS)
    tree = page.locator("ul.tree")
    expect(tree.locator("li")).to_have_count(2, timeout=WAIT_MS)
    expect(tree).to_contain_text("c1 (child)")
    expect(tree).to_contain_text("child-echo")
    _, detail, _ = http("GET", f"{server.url}/runs/{run_id}")
    child = detail["runEdges"][0]["childRunId"]
    tree.get_by_role("link", name=child).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(child, timeout=WAIT_MS)
    expect(page.locator("dl.summary")).to_contain_text("child-echo")


def test_pending_gates_oldest_first(server, page, screenshots):
    _, first = start_report(server.url)
    _, second = start_report(server.url)
    page.goto(f"{server.url}/#/gates")
    cards = page.locator(".card.gate")
    expect(cards.filter(has_text=second)).to_have_count(1, timeout=WAIT_MS)
    ids = [c.inner_text() for c in cards.all()]
    order = [i for i, text in enumerate(ids) if first in text or second in text]
    assert len(order) == 2 and first in ids[order[0]], "the older gate comes first"
    page.screenshot(path=screenshots / "gates.png", full_page=True)

    card = cards.filter(has_text=first)
    card.get_by_label("Your name").fill("Grace")
    card.get_by_role("button", name="Reject").click()
    expect(cards.filter(has_text=first)).to_have_count(0, timeout=WAIT_MS)
    _, detail, _ = http("GET", f"{server.url}/runs/{first}")
    assert detail["gates"][0]["decision"] == "rejected" and detail["gates"][0]["actor"] == "Grace"


def test_workflows_view_deploys_an_uploaded_component(server, page, screenshots):
    from conftest import COMPONENTS

    workflow = unique("steps")
    page.goto(f"{server.url}/#/workflows")
    page.get_by_label("Component (.wasm)").set_input_files(str(COMPONENTS / "steps.wasm"))
    page.get_by_label("Workflow name").fill(workflow)
    page.get_by_label("Memory (MiB)").fill("32")
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator("form.upload")).to_contain_text(f"Deployed {workflow} version 1", timeout=WAIT_MS)
    versions = page.locator("section", has=page.get_by_role("heading", name=workflow))
    expect(versions).to_contain_text("sha256:")
    expect(versions).to_contain_text("32 MiB")
    page.screenshot(path=screenshots / "workflows.png", full_page=True)
    _, listed, _ = http("GET", f"{server.url}/workflows")
    mine = [d for d in listed["deployments"] if d["workflowName"] == workflow]
    assert mine and mine[0]["memoryLimitBytes"] == 32 << 20


def test_queues_and_schedules_view(server, page, screenshots):
    queue = unique("q")
    http("PUT", f"{server.url}/queues/{queue}/config", {"concurrency": 2, "ratePerMinute": 30})
    for _ in range(3):
        http("POST", f"{server.url}/queues/{queue}/enqueue", {"workflowName": "nightly", "input": {}})
    schedule = unique("every-hour")
    status, body, _ = http(
        "PUT", f"{server.url}/schedules/{schedule}", {"cron": "0 * * * *", "workflowName": "nightly", "queue": queue}
    )
    assert status == 200, body
    page.goto(f"{server.url}/#/queues")
    cells = page.locator("tr", has_text=queue).first.locator("td")
    expect(cells.nth(1)).to_have_text("3", timeout=WAIT_MS)  # depth
    expect(cells.nth(3)).to_have_text("2")  # concurrency cap
    expect(cells.nth(4)).to_have_text("30")  # rate per minute
    expect(page.locator("tr", has_text=schedule)).to_contain_text("0 * * * *")
    page.screenshot(path=screenshots / "queues.png", full_page=True)


def test_audit_lists_egress_receipts(server, page, screenshots):
    workflow = unique("fetch")
    deploy(server.url, workflow, "fetch")
    _, body, _ = http("POST", f"{server.url}/runs/{workflow}", {"input": {"url": "https://api.example.com/v1/items"}})
    run_id = body["run"]["id"]
    wait_until(
        lambda: http("GET", f"{server.url}/runs/{run_id}")[1]["run"]["status"] == "failed",
        WAIT_S,
        "the ungranted call to fail the run",
    )
    page.goto(f"{server.url}/#/audit")
    row = page.locator("tr", has_text=run_id)
    expect(row).to_contain_text("denied", timeout=WAIT_MS)
    expect(row).to_contain_text("api.example.com/v1/items")
    page.screenshot(path=screenshots / "audit.png", full_page=True)


def test_api_key_sign_in(auth_server, page, api_key, screenshots):
    _, run_id = start_report(auth_server.url, api_key)
    # The page and its assets hold no data and load without the key.
    assert http("GET", f"{auth_server.url}/studio/app.js")[0] == 200
    assert http("GET", f"{auth_server.url}/runs")[0] == 401

    page.goto(f"{auth_server.url}/#/runs/{run_id}")
    form = page.locator("form.signin")
    expect(form).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("dl.summary")).to_have_count(0)

    page.get_by_label("API key").fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(form.get_by_role("alert")).to_have_text("That API key was refused", timeout=WAIT_MS)
    page.screenshot(path=screenshots / "sign-in.png")

    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("dl.summary")).to_contain_text("running", timeout=WAIT_MS)
    # The event stream authenticates with ?token= (EventSource sends no headers).
    expect(page.locator(".live")).to_have_text("● live", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('tidebase.apiKey')") == api_key
    assert page.evaluate("localStorage.getItem('tidebase.apiKey')") is None

    # A key the server stops accepting sends the page back to sign-in.
    page.evaluate("sessionStorage.setItem('tidebase.apiKey', 'revoked')")
    page.reload()
    expect(form.get_by_role("alert")).to_have_text("That API key was refused", timeout=WAIT_MS)
