#!/usr/bin/env bash
# First contact: build tidebase-host and the example workflows, then run them
# end to end on the embedded SQLite store (./.tidebase). Needs only Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build -p tidebase-host -p tidebase-fixtures
host=target/debug/tidebase-host
wasm=target/wasm-fixtures/wasm32-wasip2/release

echo "== fanout-parent: child runs, a durable sleep, state and usage" >&2
"$host" deploy "$wasm/child_echo.wasm" --name child-echo >/dev/null
"$host" run "$wasm/fanout_parent.wasm" --workflow fanout-parent --input '{"values":[1,2,3]}'

echo "== report: steps, live state, then an approval gate" >&2
set +e
out=$("$host" run "$wasm/report.wasm" --input '{"topic":"tides"}' --no-wait 2>&1)
code=$?
set -e
echo "$out" >&2
if [ "$code" -eq 3 ]; then
  run_id=$(echo "$out" | sed -n 's/^run \(run_[0-9a-f]*\)$/\1/p' | head -n1)
  echo "== approving the gate from the CLI and resuming $run_id" >&2
  "$host" gates approve "$run_id" approve-report --actor demo
  "$host" run "$wasm/report.wasm" --run-id "$run_id"
fi
