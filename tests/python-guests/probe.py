"""`probe`: the Python test workflow of tests/e2e/python.rs, one component
for every invariant (it is built and compiled once per test process).

Input `{"mode": M, ...}`:
- `steps` (`n`): steps `s0`…`s{n-1}` returning their index, a state write
  and a usage record, then gate `go`; returns the sum and the decision;
- `retries`: step `flaky` fails twice and succeeds on its third attempt
  (`retries=2`); step `doomed` (`retries=1`) always fails, failing the run;
- `crash` (`spinMs`): step `a` (with side effects), then step `slow` that computes for `spinMs`;
- `escape`: tries the filesystem, the environment and a socket;
- `spin`: computes forever; `bomb`: allocates until memory runs out;
- `hashes` (`inputs`: JSON texts): one step per input, `h0`, `h1`, …;
- `parent`: runs the deployed `child-echo` with `{"value": 21}`;
- `fetch` (`url`, `outside`): POSTs `{"n": 1}` to `url` inside step `post`
  and returns the status and body; with `outside`, GETs it outside any step;
- no mode, `{"value": V}`: the `child-echo` contract, `{"value", "doubled"}`,
  plus `"by": "python"`.
"""

import json
import time

from tidebase_guest import http, workflow


def steps(run, input):
    total = sum(run.step(f"s{i}", lambda i=i: i, input={"i": i}) for i in range(input["n"]))
    run.state.set({"phase": "waiting", "sum": total})
    run.usage.record(kind="compute", label="probe", quantity=1, unit="call")
    decision = run.gate("go", "Continue?", data={"sum": total})
    return {"sum": total, "decision": decision.decision, "actor": decision.actor}


def retries(run, input):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)} failed")
        return len(calls)

    attempts = run.step("flaky", flaky, retries=2, side_effects=["read"])

    def doomed():
        raise KeyError("always")

    if input.get("doomed", True):
        run.step("doomed", doomed, retries=1)
    return {"attempts": attempts}


def crash(run, input):
    # Declared side effects make `a`'s checkpoint durable before `slow`
    # begins; a pure step's could still sit in the group commit when the
    # process dies, and would then run again (README: what a crash can lose).
    a = run.step("a", lambda: 1, side_effects=["write"])

    def slow():
        end = time.monotonic() + input["spinMs"] / 1000
        while time.monotonic() < end:
            pass
        return 2

    return {"a": a, "slow": run.step("slow", slow)}


def escape(run, input):
    import os

    def attempt(fn):
        try:
            return {"allowed": repr(fn())[:100]}
        except Exception as e:  # noqa: BLE001 — the refusal is the answer
            return {"denied": type(e).__name__}

    def connect():
        import socket  # componentize-py's CPython has none: ModuleNotFoundError

        return socket.create_connection(("127.0.0.1", 5432), timeout=1)

    def write_tmp():
        with open("/tmp/tidebase-probe", "w") as f:
            return f.write("x")

    return {
        "env": len(os.environ),
        "listRoot": attempt(lambda: os.listdir("/")),
        "readEtc": attempt(lambda: open("/etc/passwd").read()),
        "writeTmp": attempt(write_tmp),
        "connect": attempt(connect),
    }


def spin(run, input):
    n = 0
    while True:
        n += 1


def bomb(run, input):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


def hashes(run, input):
    return [
        run.step(f"h{i}", lambda i=i: i, input=json.loads(text))
        for i, text in enumerate(input["inputs"])
    ]


def parent(run, input):
    return run.child("child-echo", input={"value": 21})


def fetch(run, input):
    if input.get("outside"):
        http.get(input["url"])

    def post():
        response = http.post(input["url"], {"n": 1})
        return {"status": response.status, "body": response.text(), "ok": response.ok}

    return run.step("post", post, side_effects=["http.post"], idempotency_key="probe-post")


MODES = {f.__name__: f for f in (steps, retries, crash, escape, spin, bomb, hashes, parent, fetch)}


@workflow
def probe(run, input):
    mode = input.get("mode")
    if mode is None:
        return {"value": input["value"], "doubled": 2 * input["value"], "by": "python"}
    return MODES[mode](run, input)
