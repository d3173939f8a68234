"""The component side: the `run` export and the host imports, in JSON terms.

Only importable inside a component built by `tidebase-host build`, whose
generated entry module imports the user's workflow file and then this one.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from componentize_py_types import Err
from wit_world import WitWorld as _Export
from wit_world.imports import host as _imports
from wit_world.imports import tidebase_workflow_types as wit

from . import GateDecision, HostError, RunContext, _error_of, _registered
from . import http  # noqa: F401 — imported now: see "Imports" in README.md

_REPLAY = {"auto": wit.ReplayPolicy.AUTO, "manual": wit.ReplayPolicy.MANUAL, "never": wit.ReplayPolicy.NEVER}
_IMPORTANCE = {
    "transient": wit.Importance.TRANSIENT,
    "normal": wit.Importance.NORMAL,
    "checkpoint": wit.Importance.CHECKPOINT,
    "milestone": wit.Importance.MILESTONE,
}
_LEVELS = {
    "trace": wit.LogLevel.TRACE,
    "debug": wit.LogLevel.DEBUG,
    "info": wit.LogLevel.INFO,
    "warn": wit.LogLevel.WARN,
    "warning": wit.LogLevel.WARN,
    "error": wit.LogLevel.ERROR,
}
_DECISIONS = {
    wit.Decision.APPROVED: "approved",
    wit.Decision.REJECTED: "rejected",
    wit.Decision.CANCELED: "canceled",
}
_STATE_OPTIONS = ("stream", "label", "reason", "importance", "metadata", "created_by")


def _json(value: Any) -> Optional[str]:
    return None if value is None else json.dumps(value)


def _call(fn, *args):
    """Calls an import, turning its WIT error into an exception (a gate
    timeout into ``TimeoutError``, as the SDK raises)."""
    try:
        return fn(*args)
    except Err as e:
        err = e.value
        if err.name == "TimeoutError":
            raise TimeoutError(err.message) from None
        raise HostError(err.name, err.message) from None


def _choice(table: dict, value: Optional[str], what: str):
    if value is None:
        return None
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"{what} must be one of {', '.join(table)}, not {value!r}") from None


class Imports:
    """The host operations RunContext uses, with Python values in and out."""

    @staticmethod
    def step_options(*, input, input_hash, retries, timeout_ms, side_effects, idempotency_key,
                     replay, checkpoint_invariant, verified_by, credentials):
        return wit.StepOptions(
            input=_json(input),
            input_hash=input_hash,
            retries=retries,
            timeout_ms=timeout_ms,
            side_effects=list(side_effects or []),
            idempotency_key=idempotency_key,
            replay=_choice(_REPLAY, replay, "replay"),
            checkpoint_invariant=_json(checkpoint_invariant),
            verified_by=_json(verified_by),
            credentials=_json(credentials),
        )

    @staticmethod
    def step_begin(name: str, options) -> tuple:
        """(True, step id) to execute, or (False, recorded output) to replay."""
        start = _call(_imports.step_begin, name, options)
        if isinstance(start, wit.StepStart_Execute):
            return True, start.value
        return False, json.loads(start.value)

    @staticmethod
    def step_complete(step_id: str, output: Any) -> None:
        _call(_imports.step_complete, step_id, json.dumps(output))

    @staticmethod
    def step_fail(step_id: str, error: tuple, retryable: bool) -> None:
        _call(_imports.step_fail, step_id, wit.Error(name=error[0], message=error[1]), retryable)

    @staticmethod
    def gate(name, prompt, *, data, capability, timeout_ms) -> GateDecision:
        request = wit.GateRequest(
            name=name,
            prompt=prompt,
            data=json.dumps(data if data is not None else {}),
            capability=_json(capability),
            timeout_ms=timeout_ms,
        )
        outcome = _call(_imports.gate, request)
        return GateDecision(
            outcome.gate_id,
            name,
            _DECISIONS[outcome.decision],
            outcome.actor,
            json.loads(outcome.payload),
        )

    @staticmethod
    def state_get() -> Any:
        text = _imports.state_get()
        return None if text is None else json.loads(text)

    @staticmethod
    def state_write(kind: str, value: Any, options: dict) -> int:
        # Like the SDK: None values dropped, unknown keywords ignored.
        given = {k: v for k, v in options.items() if k in _STATE_OPTIONS and v is not None}
        wit_options = wit.StateOptions(
            stream=given.get("stream"),
            label=given.get("label"),
            reason=given.get("reason"),
            importance=_choice(_IMPORTANCE, given.get("importance"), "importance"),
            metadata=_json(given.get("metadata")),
            created_by=given.get("created_by"),
        )
        if kind == "save":
            return _call(_imports.state_save, value, wit_options)
        write = _imports.state_set if kind == "set" else _imports.state_patch
        return _call(write, json.dumps(value), wit_options)

    @staticmethod
    def usage_record(body: dict) -> None:
        _call(_imports.usage_record, json.dumps(body))

    @staticmethod
    def child(edge: str, workflow: str, input: Any) -> Any:
        return json.loads(_call(_imports.child, edge, workflow, json.dumps(input)))

    @staticmethod
    def sleep(duration_ms: int) -> None:
        _imports.sleep(duration_ms)

    @staticmethod
    def now() -> int:
        return _imports.now()

    @staticmethod
    def random() -> int:
        return _imports.random()

    @staticmethod
    def log(level: str, message: str) -> None:
        _imports.log(_choice(_LEVELS, level, "level"), message)


if len(_registered) != 1:
    # Raised while componentize-py pre-initializes the component, so the
    # build (not a run) fails.
    raise RuntimeError(
        "the workflow file must mark exactly one function with @tidebase_guest.workflow "
        f"(found {len(_registered)})"
    )


class WitWorld(_Export):
    """The component's `run` export."""

    def run(self, input: str) -> str:
        value = json.loads(input) if input.strip() else None
        try:
            result = _registered[0](RunContext(Imports), value)
        except Exception as error:  # noqa: BLE001 — the run's failure
            name, message = _error_of(error)
            raise Err(wit.Error(name=name, message=message)) from None
        return json.dumps(result)
