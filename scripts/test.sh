#!/usr/bin/env bash
# The whole test suite: Rust unit and end-to-end tests (every invariant on
# Postgres and SQLite, real wasm components), then the real Python client
# (tidebase 0.5.0 and 0.7.0) against `tidebase-host serve` on both backends,
# then Studio in a real Chromium (Playwright), then schemathesis fuzzing of
# the HTTP API on both backends.
#
# Needs: Rust with the wasm32-wasip2 target, Python 3.11 with venv,
# componentize-py 0.25.1 and the tidebase SDK for the Python-guest tests
# (on PATH, or TIDEBASE_COMPONENTIZE_PY / TIDEBASE_SDK_PYTHON), Debian's
# chromium (or TIDEBASE_CHROMIUM), and a
# Postgres reachable at TIDEBASE_TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# componentize-py (`tidebase-host build`) and the tidebase SDK the
# Python-guest tests compare input hashes with, in a venv of their own,
# unless TIDEBASE_COMPONENTIZE_PY and TIDEBASE_SDK_PYTHON name them.
if [ -z "${TIDEBASE_COMPONENTIZE_PY:-}" ] || [ -z "${TIDEBASE_SDK_PYTHON:-}" ]; then
  PY_GUESTS="$PWD/tests/python-guests/.venv"
  if [ ! -x "$PY_GUESTS/bin/componentize-py" ]; then
    python3 -m venv "$PY_GUESTS"
    "$PY_GUESTS/bin/pip" install --quiet --disable-pip-version-check \
      componentize-py==0.25.1 tidebase==0.7.0
  fi
  export TIDEBASE_COMPONENTIZE_PY="$PY_GUESTS/bin/componentize-py"
  export TIDEBASE_SDK_PYTHON="$PY_GUESTS/bin/python"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The Python guest SDK's stable JSON against the shared vectors and the SDK.
"${TIDEBASE_SDK_PYTHON:-python3}" -m unittest discover -s guest-sdk/python/tests
cargo build -p tidebase-host

for sdk in 0.5.0 0.7.0; do
  for backend in postgres sqlite; do
    echo "== Python client tidebase==$sdk on $backend"
    TIDEBASE_SDK_VERSION=$sdk TIDEBASE_TEST_BACKEND=$backend tests/sdk-python/run.sh
  done
done

# Studio in the browser, both backends; screenshots land in docs/screenshots.
for backend in postgres sqlite; do
  echo "== Studio in Chromium on $backend"
  TIDEBASE_TEST_BACKEND=$backend tests/studio/run.sh
done

# The HTTP API against its OpenAPI document (schemathesis), both backends.
TIDEBASE_TEST_BACKEND=postgres tests/fuzz/run.sh
TIDEBASE_TEST_BACKEND=sqlite tests/fuzz/run.sh
