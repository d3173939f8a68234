"""Writes the pgbench scripts of bench/pgbench/run.sh into the directory given.

Each script sends Postgres the statements tidebase-host sends for one load of
tidebase-bench (taken from `--pg-log-statements`), with the same columns,
256-byte step outputs and event payloads, from pgbench: a C client that costs
Postgres' machine almost nothing. What a script reaches is therefore what
Postgres itself allows that load on this machine, with no HTTP, engine or
driver in the way.

- ceiling.sql: one autocommit 256-byte insert, as the bench's commit ceiling.
- wasm-run.sql: one 10-step wasm run: its creation with `run.created`, its
  claim with `run.started` (by id: cheaper than the worker's claim, which
  searches for ready runs), then the transaction that ends it: the fence,
  the group of 10 steps and their 20 events, the completion with
  `run.completed`, and the read of its channels.
- http-run.sql: one 10-step run driven as an SDK worker drives the HTTP API:
  its creation, per step the begin's read, the begin's insert with
  `step.started` and the complete's guarded update with `step.completed`,
  then the completion.
- replay.sql: the one statement of a replayed step, a begin's read of a
  completed step of run `:run` (pgbench `-D run=…`).

pgbench's prepared mode takes `:name` for a variable anywhere in a
statement, so JSON literals are written with a space after each colon.
It also allows at most 255 variables in a statement, which rules out the
64-step groups of the bench's long runs.
"""

import pathlib
import sys

RUN = "('run_' || :r)"
NOW = 1796083794245675
LEASE_END = NOW + 60_000_000
DIGEST = "sha256-fc18bb4318b00230ae6d9bcfc99e0e764c0523e15aa2b2f2935f2df67e9d78aa"
INPUT_HASH = "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"
OWNER = "wasm-worker-a3629b93-b871-4149-8ccd-7b376f963a59"
RUN_COLUMNS = [
    "id", "workflow_name", "input_json", "metadata_json", "status", "result_json",
    "error_json", "recovery_webhook", "lease_owner", "lease_expires_at", "attempt",
    "queue_name", "dedupe_key", "priority", "run_at", "max_attempts", "deadline_at",
    "cancel_requested_at", "cancelled_at", "cancel_reason", "cancel_actor",
    "failure_class", "claimed_at", "component_digest", "created_at", "updated_at",
    "completed_at", "parked_until",
]
STEP_COLUMNS = (
    "id, run_id, name, input_hash, input_json, options_json, status, output_json, "
    "error_json, lease_owner, lease_expires_at, attempt, started_at, completed_at, "
    "created_at, updated_at"
)
APPEND = "INSERT INTO events (run_id, seq, type, payload_json, created_at)"


def text(value):
    return "'" + value.replace("'", "''") + "'"


RUN_INPUT = text('{"outputBytes": 256, "steps": 10}')


def output(i):
    """A step output of 256 bytes, as the bench's."""
    return text('{"i": %d, "pad": "%s"}' % (i, "x" * 241))


def started(i, name):
    contract = (
        '{"checkpointInvariant": null, "credentials": [], "idempotencyKey": null, '
        '"replay": "auto", "sideEffects": [], "verifiedBy": null}'
    )
    return text(
        '{"attempt": 1, "name": "%s", "resumeContract": %s, "stepId": "step_%d"}'
        % (name, contract, i)
    )


def completed(i, name):
    return text(
        '{"checkpointInvariant": null, "name": "%s", "stepId": "step_%d", '
        '"verifiedBy": null}' % (name, i)
    )


def run_row(status, result, attempt):
    values = [RUN, "'steps'", RUN_INPUT, "'{}'", text(status), result] + ["NULL"] * 4
    values += [str(attempt), "NULL", "NULL", "0", "NULL", "1"] + ["NULL"] * 7
    values += [text(DIGEST), str(NOW), str(NOW), str(NOW) if result != "NULL" else "NULL"]
    return values + ["NULL"]


def bump_and_append(events, after=None, assign=""):
    """The run's event counter bumped once for `events`, which take the seqs
    it frees, as one statement; with `after`, only if that write touched a
    row. `assign` (`a = x, `) is more of the run row, set by the bump."""
    n = len(events)
    guard = " AND EXISTS (SELECT 1 FROM w)" if after else ""
    rows = " UNION ALL ".join(
        f"SELECT {RUN}, event_seq - {n - 1 - k}, {text(kind)}, {payload}, {NOW} FROM s"
        for k, (kind, payload) in enumerate(events)
    )
    bump = f"UPDATE runs SET {assign}event_seq = event_seq + {n} WHERE id = {RUN}{guard} RETURNING event_seq"
    head = f"WITH w AS ({after} RETURNING run_id), " if after else "WITH "
    return f"{head}s AS ({bump}) {APPEND} {rows} RETURNING id, seq;"


def creation():
    created = text('{"channels": [], "input": {"outputBytes": 256, "steps": 10}, "workflowName": "steps"}')
    return [
        "BEGIN;",
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join(run_row('pending', 'NULL', 0))});",
        bump_and_append([("run.created", created)]),
        "COMMIT;",
    ]


def ending():
    """The statements of the transaction that ends a run, around its last
    steps: the fence, the completion with `run.completed`, the channels."""
    select = ", ".join(RUN_COLUMNS)
    values = run_row("completed", text('{"steps": 10, "sum": 45}'), 1)
    sets = ", ".join(f"{c} = {v}" for c, v in zip(RUN_COLUMNS, values))
    result = text('{"result": {"steps": 10, "sum": 45}}')
    completion = bump_and_append([("run.completed", result)], assign=sets + ", ")
    channels = (
        "SELECT id, run_id, type, config_json, events_json, created_at FROM channels "
        f"WHERE run_id = {RUN} ORDER BY created_at, id;"
    )
    fence = f"SELECT {select} FROM runs WHERE id = {RUN} FOR UPDATE;"
    return fence, completion, channels


def claim():
    returning = ", ".join("r." + c for c in RUN_COLUMNS)
    payload = text('{"leaseOwner": "%s"}' % OWNER)
    return (
        f"WITH c AS (UPDATE runs r SET status = 'running', lease_owner = {text(OWNER)}, "
        f"lease_expires_at = {LEASE_END}, parked_until = NULL, updated_at = {NOW}, "
        f"attempt = r.attempt + 1, event_seq = r.event_seq + 1 WHERE r.id = {RUN} "
        f"RETURNING {returning}, r.event_seq), "
        f"e AS ({APPEND} SELECT id, event_seq, 'run.started', "
        f"{payload}, {NOW} FROM c) "
        f"SELECT {', '.join(RUN_COLUMNS)}, CAST(CASE WHEN EXISTS (SELECT 1 FROM steps "
        "WHERE run_id = c.id) OR EXISTS (SELECT 1 FROM host_calls WHERE run_id = c.id) "
        "THEN 1 ELSE 0 END AS BIGINT) AS recorded FROM c;"
    )


def step_id(i):
    return f"('step_' || :r || '_{i}')"


def wasm_run():
    rows = ", ".join(
        f"({step_id(i)}, {RUN}, 's{i}', {text(INPUT_HASH)}, '{{}}', '{{}}', 'completed', "
        f"{output(i)}, NULL, NULL, NULL, 1, {NOW}, {NOW}, {NOW}, {NOW})"
        for i in range(10)
    )
    events = [e for i in range(10) for e in (("step.started", started(i, f"s{i}")),
                                              ("step.completed", completed(i, f"s{i}")))]
    group = bump_and_append(events, after=f"INSERT INTO steps ({STEP_COLUMNS}) VALUES {rows}")
    fence, completion, channels = ending()
    return creation() + [claim(), "BEGIN;", fence, group, completion, channels, "COMMIT;"]


def begin_read(name, run):
    """A step begin's read: the run's status and the step, if any."""
    return (
        "SELECT r.status AS run_status, s.id, s.run_id, s.name, s.input_hash, "
        "s.input_json, s.options_json, s.status, s.output_json, s.error_json, "
        "s.lease_owner, s.lease_expires_at, s.attempt, s.started_at, s.completed_at, "
        "s.created_at, s.updated_at FROM runs r LEFT JOIN steps s ON s.run_id = r.id "
        f"AND s.name = '{name}' WHERE r.id = {run};"
    )


def http_run():
    lines = creation()
    for i in range(10):
        name = f"step-{i}"
        lines.append(begin_read(name, RUN))
        step_input = text('{"i": %d}' % i)
        insert = (
            f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({step_id(i)}, {RUN}, '{name}', "
            f"{text(INPUT_HASH)}, {step_input}, '{{}}', 'running', NULL, NULL, 'bench-1', "
            f"{LEASE_END}, 1, {NOW}, NULL, {NOW}, {NOW}) ON CONFLICT (run_id, name) DO NOTHING"
        )
        lines.append(bump_and_append([("step.started", started(i, name))], after=insert))
        update = (
            f"UPDATE steps SET id = {step_id(i)}, run_id = {RUN}, name = '{name}', "
            f"input_hash = {text(INPUT_HASH)}, input_json = {step_input}, options_json = '{{}}', "
            f"status = 'completed', output_json = {output(i)}, error_json = NULL, "
            f"lease_owner = NULL, lease_expires_at = NULL, attempt = 1, started_at = {NOW}, "
            f"completed_at = {NOW + 1}, created_at = {NOW}, updated_at = {NOW + 1} "
            f"WHERE id = {step_id(i)} AND run_id = {RUN} AND lease_owner = 'bench-1' "
            f"AND attempt = 1 AND status = 'running' AND updated_at = {NOW}"
        )
        lines.append(bump_and_append([("step.completed", completed(i, name))], after=update))
    fence, completion, channels = ending()
    return lines + ["BEGIN;", fence, completion, channels, "COMMIT;"]


def main():
    out = pathlib.Path(sys.argv[1])
    variable = "\\set r random(1, 1000000000000000)"
    # name: (steps per transaction, statements)
    scripts = {
        "ceiling": (1, [f"INSERT INTO commit_ceiling (id, payload) VALUES ('c_' || :r, {text('x' * 256)});"]),
        "wasm-run": (10, wasm_run()),
        "http-run": (10, http_run()),
        "replay": (1, [begin_read("step-3", ":run")]),
    }
    for name, (steps, lines) in scripts.items():
        head = [f"-- steps per transaction: {steps}", variable]
        (out / f"{name}.sql").write_text("\n".join(head + lines) + "\n")


main()
