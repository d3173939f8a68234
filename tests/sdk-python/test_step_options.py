"""Every RunContext.step option is stored verbatim and drives the resume contract
and failure classification (http-api.md §2.2/§2.3, semantics.md §6)."""

from __future__ import annotations

from helpers import assert_gap_free, events_of, stable_hash, step_by_name, unique


def _contract(side_effects=(), key=None, replay="auto", invariant=None, verified=None, credentials=()):
    return {
        "sideEffects": list(side_effects),
        "idempotencyKey": key,
        "replay": replay,
        "checkpointInvariant": invariant,
        "verifiedBy": verified,
        "credentials": list(credentials),
    }


def test_step_options_are_stored_and_contract_derived(tide):
    name = unique("options")
    seen = {}
    creds = [{"name": "smtp", "scopes": ["send"]}]

    def wf(run, input):
        seen["run_id"] = run.run_id
        run.step("plain", lambda: 1)
        run.step(
            "everything",
            lambda: {"sent": True},
            input={"to": "a@example.com", "n": [1, 2]},
            input_hash="custom-hash-1",
            retries=1,
            timeout_s=1.5,
            side_effects=["email.send"],
            idempotency_key="idem-1",
            checkpoint_invariant={"sent": "exactly once"},
            verified_by="provider-receipt",
            credentials=creds,
        )
        run.step("unkeyed-write", lambda: 2, side_effects=["email.send"])
        run.step("read-only", lambda: 3, side_effects=["read"])
        run.step("explicit-manual", lambda: 4, replay="manual")
        run.step("explicit-never", lambda: 5, replay="never", side_effects=["db.write"], idempotency_key="k")
        return "done"

    assert tide.run(name, wf) == "done"
    detail = tide.runs.get(seen["run_id"])
    assert detail["run"]["status"] == "completed"

    plain = step_by_name(detail, "plain")
    assert plain["options"] == {}
    assert plain["resumeContract"] == _contract()

    every = step_by_name(detail, "everything")
    assert every["inputHash"] == "custom-hash-1"  # caller-supplied hash is opaque
    assert every["input"] == {"to": "a@example.com", "n": [1, 2]}
    assert every["options"] == {
        "input": {"to": "a@example.com", "n": [1, 2]},
        "retries": 1,
        "timeoutMs": 1500,
        "sideEffects": ["email.send"],
        "idempotencyKey": "idem-1",
        "checkpointInvariant": {"sent": "exactly once"},
        "verifiedBy": "provider-receipt",
        "credentials": creds,
    }
    assert every["resumeContract"] == _contract(
        ["email.send"], "idem-1", "auto", {"sent": "exactly once"}, "provider-receipt", creds
    )
    assert every["output"] == {"sent": True} and every["attempt"] == 1

    unkeyed = step_by_name(detail, "unkeyed-write")
    assert unkeyed["options"] == {"sideEffects": ["email.send"]}
    assert unkeyed["resumeContract"] == _contract(["email.send"], None, "manual")
    assert unkeyed["inputHash"] == stable_hash(None)

    assert step_by_name(detail, "read-only")["resumeContract"] == _contract(["read"], None, "auto")
    assert step_by_name(detail, "explicit-manual")["resumeContract"] == _contract([], None, "manual")
    assert step_by_name(detail, "explicit-never")["resumeContract"] == _contract(["db.write"], "k", "never")

    # Events carry the contract / invariant too.
    started = {e["payload"]["name"]: e["payload"] for e in events_of(detail, "step.started")}
    assert started["everything"]["resumeContract"] == every["resumeContract"]
    assert started["unkeyed-write"]["resumeContract"]["replay"] == "manual"
    completed = {e["payload"]["name"]: e["payload"] for e in events_of(detail, "step.completed")}
    assert completed["everything"]["checkpointInvariant"] == {"sent": "exactly once"}
    assert completed["everything"]["verifiedBy"] == "provider-receipt"
    assert completed["plain"]["checkpointInvariant"] is None and completed["plain"]["verifiedBy"] is None
    assert_gap_free(detail["events"], seen["run_id"])


def test_final_failure_classification_per_options(tide):
    """The workflow catches each final step failure, so one run holds them all."""
    name = unique("classify")
    seen = {}
    cases = {
        # step name: (step kwargs, expected resumeDecision, expected step status)
        "no-options": ({}, "safe_replay", "failed"),
        "unkeyed-email": ({"side_effects": ["email.send"]}, "manual_review", "manual_review"),
        "keyed-email": ({"side_effects": ["email.send"], "idempotency_key": "mail-1"}, "safe_replay", "failed"),
        "reads": ({"side_effects": ["read"]}, "safe_replay", "failed"),
        "never": ({"replay": "never"}, "fail_hard", "failed"),
        "manual": ({"replay": "manual"}, "manual_review", "manual_review"),
        "auto-unkeyed": ({"replay": "auto", "side_effects": ["payments.charge"]}, "safe_replay", "failed"),
    }

    def wf(run, input):
        seen["run_id"] = run.run_id
        raised = {}
        for step_name, (kwargs, _, _) in cases.items():

            def boom(step_name=step_name):
                raise RuntimeError(f"{step_name} failed")

            try:
                run.step(step_name, boom, **kwargs)
            except RuntimeError as e:
                raised[step_name] = str(e)
        return raised

    result = tide.run(name, wf)
    assert result == {n: f"{n} failed" for n in cases}

    detail = tide.runs.get(seen["run_id"])
    assert detail["run"]["status"] == "completed"  # step failures never change run status
    fails = {e["payload"]["name"]: e["payload"] for e in events_of(detail, "step.failed")}
    for step_name, (_, decision, status) in cases.items():
        step = step_by_name(detail, step_name)
        assert step["status"] == status, f"{step_name}: status {step['status']} != {status}"
        assert step["error"] == {"name": "RuntimeError", "message": f"{step_name} failed"}
        assert step["leaseOwner"] is None
        assert step["attempt"] == 1
        payload = fails[step_name]
        assert payload["retryable"] is False, step_name
        assert payload["resumeDecision"] == decision, f"{step_name}: {payload['resumeDecision']} != {decision}"
        assert payload["resumeContract"] == step["resumeContract"]
        assert payload["error"] == step["error"]
    assert step_by_name(detail, "unkeyed-email")["resumeContract"]["replay"] == "manual"
    assert step_by_name(detail, "keyed-email")["resumeContract"]["replay"] == "auto"
    assert step_by_name(detail, "never")["resumeContract"]["replay"] == "never"
    assert_gap_free(detail["events"], seen["run_id"])


def test_failed_steps_are_re_executed_on_resume(tide):
    """manual_review / failed steps are advisory: a resumed run executes them again."""
    name = unique("reexec")
    seen = {}
    calls = []

    def wf(run, input):
        seen["run_id"] = run.run_id

        def send():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("smtp timeout")
            return "sent"

        return run.step("send", send, side_effects=["email.send"])

    try:
        tide.run(name, wf)
    except RuntimeError:
        pass
    first = step_by_name(tide.runs.get(seen["run_id"]), "send")
    assert first["status"] == "manual_review"

    assert tide.run(name, wf, run_id=seen["run_id"]) == "sent"
    detail = tide.runs.get(seen["run_id"])
    step = step_by_name(detail, "send")
    assert step["status"] == "completed" and step["attempt"] == 2 and step["error"] is None
    assert step["startedAt"] == first["startedAt"]  # kept across executions
    assert detail["run"]["status"] == "completed"
