"""Write Tidebase durable workflows in Python and run them sandboxed in tidebase-host.

A workflow is the function you would hand to the Tidebase Python SDK's
``tide.run(name, workflow)``: ``workflow(run, input)``. Mark it with
:func:`workflow` and build the file with ``tidebase-host build wf.py -o wf.wasm``::

    from tidebase_guest import workflow

    @workflow
    def report(run, input):
        plan = run.step("plan", lambda: {"sections": 3}, input={"topic": input["topic"]})
        run.state.set({"phase": "awaiting approval"})
        if not run.gate("approve", "Write it?").approved:
            return {"written": False}
        return run.step("write", lambda: {"written": True}, side_effects=["report.write"],
                        idempotency_key="report:" + input["topic"])

The ``run`` object mirrors the SDK's ``RunContext`` (``step``, ``gate``,
``state``, ``usage``, ``child``, ``fanout``) but talks to the host through
the component's imports instead of HTTP; README.md lists the differences.
The module imports nothing from the component outside one, so a workflow
file can also be imported (and run through the SDK) by plain CPython.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Optional

__all__ = [
    "workflow",
    "RunContext",
    "GateDecision",
    "HostError",
    "RunCancelled",
    "stable_json",
    "input_hash",
]

_registered: list = []


def workflow(fn: Callable[["RunContext", Any], Any]) -> Callable[["RunContext", Any], Any]:
    """Marks ``fn(run, input)`` as the component's workflow (one per component).
    Returns ``fn`` unchanged, so the same function still runs under the SDK."""
    _registered.append(fn)
    return fn


def stable_json(value: Any) -> str:
    """The stable JSON text the Python SDK hashes: object keys sorted, no
    whitespace, non-ASCII kept, scalars as ``json.dumps`` writes them."""
    if isinstance(value, dict):
        items = (
            json.dumps(str(k), ensure_ascii=False) + ":" + stable_json(value[k])
            for k in sorted(value)
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(stable_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def input_hash(value: Any) -> str:
    """Lowercase hex SHA-256 of ``stable_json(value)``: the step ``inputHash``."""
    return hashlib.sha256(stable_json(value).encode("utf-8")).hexdigest()


# `RunContext.step` has a keyword argument of the same name.
_hash_of = input_hash


class HostError(Exception):
    """An error the host answered a call with (``name`` is its class, e.g.
    ``HostError``, ``InvalidJson``, ``ChildFailed``)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message


class RunCancelled(RuntimeError):
    """Kept for SDK compatibility: in a component a cancelled run simply stops
    (the host ends the activation), so workflow code never sees it."""

    def __init__(self, run_id: str = "unknown"):
        super().__init__(f"Run {run_id} was cancelled")
        self.run_id = run_id


class GateDecision:
    """The outcome of :meth:`RunContext.gate`, as the SDK's ``GateDecision``."""

    def __init__(self, gate_id: str, name: str, decision: str, actor: Optional[str], payload: Any):
        self.gate_id = gate_id
        self.name = name
        self.status = "resolved"
        self.decision = decision
        self.actor = actor
        self.payload = payload

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def __repr__(self) -> str:
        return f"GateDecision(name={self.name!r}, decision={self.decision!r}, actor={self.actor!r})"


def _error_of(error: BaseException) -> tuple:
    """(name, message) the way the SDK serializes an exception."""
    if isinstance(error, HostError):
        return error.name, error.message
    return type(error).__name__, str(error)


class RunContext:
    """The ``run`` passed to the workflow: the SDK's ``RunContext`` over host imports."""

    def __init__(self, host: Any):
        self._host = host
        self._step_id: Optional[str] = None
        self.state = RunState(host)
        self.usage = RunUsage(self)

    @property
    def current_step_id(self) -> Optional[str]:
        """Id of the step attempt whose code is running (``None`` outside steps),
        e.g. for ``run.usage.record(step_id=...)``."""
        return self._step_id

    def step(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        input: Any = None,
        input_hash: Optional[str] = None,
        retries: int = 0,
        timeout_s: Optional[float] = None,
        side_effects: Optional[list] = None,
        idempotency_key: Optional[str] = None,
        replay: Optional[str] = None,
        checkpoint_invariant: Any = None,
        verified_by: Any = None,
        credentials: Optional[list] = None,
    ) -> Any:
        """Checkpoint a unit of work: a step that completed on an earlier
        execution returns its recorded output without calling ``fn``."""
        options = self._host.step_options(
            input=input,
            input_hash=input_hash or _hash_of(input),
            retries=retries,
            timeout_ms=None if timeout_s is None else int(timeout_s * 1000),
            side_effects=side_effects,
            idempotency_key=idempotency_key,
            replay=replay,
            checkpoint_invariant=checkpoint_invariant,
            verified_by=verified_by,
            credentials=credentials,
        )
        attempts = max(1, retries + 1)
        for attempt in range(1, attempts + 1):
            started, value = self._host.step_begin(name, options)
            if not started:
                return value
            step_id = value
            outer, self._step_id = self._step_id, step_id
            try:
                result = fn()
                self._host.step_complete(step_id, result)
                return result
            except BaseException as error:  # noqa: BLE001 — reported, then re-raised, as the SDK does
                retryable = attempt < attempts
                # As in the SDK, failing to record the failure is not fatal.
                try:
                    self._host.step_fail(step_id, _error_of(error), retryable)
                except HostError:
                    pass
                if not retryable:
                    raise
            finally:
                self._step_id = outer
        raise RuntimeError(f"Step {name} failed")

    def gate(
        self,
        name: str,
        prompt: str,
        *,
        data: Any = None,
        channels: Optional[list] = None,
        capability: Optional[dict] = None,
        timeout_s: Optional[float] = None,
        poll_s: float = 1.0,
    ) -> GateDecision:
        """Wait for a human decision. The host suspends the run while the gate
        is pending (``poll_s`` is not needed and ignored); a timeout is recorded
        by the host and raises ``TimeoutError`` now and on every resume."""
        if channels:
            raise ValueError(
                "gate channels are not supported in components; notify from a step instead"
            )
        return self._host.gate(
            name,
            prompt,
            data=data,
            capability=capability,
            timeout_ms=None if timeout_s is None else int(timeout_s * 1000),
        )

    def child(
        self,
        workflow_name: str,
        workflow: Any = None,
        *,
        name: Optional[str] = None,
        input: Any = None,
    ) -> Any:
        """Run the deployed workflow ``workflow_name`` (Python or Rust component)
        as a child and return its result; ``name`` is the edge name (default
        ``workflow_name``), so a resumed parent gets the same child.
        ``workflow`` is accepted for SDK compatibility and ignored: the host
        runs the deployed component."""
        return self._host.child(name or workflow_name, workflow_name, input)

    def fanout(self, name: str, children: list, *, checkpoint: Optional[str] = None) -> list:
        """Run the children (dicts with ``name``, optional ``workflow_name``,
        ``input``) and record the SDK's join checkpoint over their results."""
        results = [
            self.child(
                child.get("workflow_name") or child["name"],
                name=child["name"],
                input=child.get("input"),
            )
            for child in children
        ]
        return self.step(
            f"join:{checkpoint or name}",
            lambda: results,
            input={"fanout": name, "join": "all", "children": [c["name"] for c in children]},
            replay="auto",
            checkpoint_invariant="all child run results were collected",
        )

    def sleep(self, seconds: float) -> None:
        """Durable sleep: the run is suspended and resumed after ``seconds``."""
        self._host.sleep(max(0, int(seconds * 1000)))

    def now(self) -> float:
        """Seconds since the Unix epoch, recorded on first execution and
        replayed on resume (use it instead of ``time.time()``)."""
        return self._host.now() / 1000

    def now_ms(self) -> int:
        """:meth:`now` in integer milliseconds."""
        return self._host.now()

    def random(self) -> int:
        """A random 64-bit integer, recorded and replayed like :meth:`now`."""
        return self._host.random()

    def log(self, message: str, level: str = "info") -> None:
        """Write a line to the run's log (``trace`` … ``error``)."""
        self._host.log(level, str(message))


class RunState:
    """``run.state``: the run's live state."""

    def __init__(self, host: Any):
        self._host = host

    def get(self) -> Any:
        """The live state, or ``None`` before the first write."""
        return self._host.state_get()

    def set(self, value: Any, **options: Any) -> int:
        """Replace the live state; returns the new version number."""
        return self._host.state_write("set", value, options)

    def patch(self, value: dict, **options: Any) -> int:
        """Shallow-merge ``value`` into the live state; returns the new version."""
        return self._host.state_write("patch", value, options)

    def save(self, label: str, **options: Any) -> int:
        """Record the live state as a labeled version; returns its number."""
        return self._host.state_write("save", label, options)


_USAGE_FIELDS = {
    "step_id": "stepId",
    "kind": "kind",
    "provider": "provider",
    "model": "model",
    "label": "label",
    "quantity": "quantity",
    "unit": "unit",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "total_tokens": "totalTokens",
    "cost_usd": "costUsd",
    "metadata": "metadata",
}


class RunUsage:
    """``run.usage``: the run's usage ledger."""

    def __init__(self, run: RunContext):
        self._run = run

    def record(self, **fields: Any) -> None:
        """Append a usage record; keywords as the SDK's (``kind``, ``model``,
        ``input_tokens``, ``cost_usd``, ``step_id``, …). None values are dropped."""
        unknown = set(fields) - set(_USAGE_FIELDS)
        if unknown:
            raise TypeError(f"usage.record: unknown field(s) {', '.join(sorted(unknown))}")
        body = {_USAGE_FIELDS[k]: v for k, v in fields.items() if v is not None}
        self._run._host.usage_record(body)
