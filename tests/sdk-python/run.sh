#!/usr/bin/env bash
# Python client-compatibility suite: drives the real `tidebase` client from
# PyPI against a freshly started `tidebase-host serve`.
#
#   TIDEBASE_SDK_VERSION        client version to test: 0.7.0 (default) or 0.5.0;
#                               each gets its own venv (.venv-<version>)
#   TIDEBASE_HOST_BIN           server binary (default target/debug/tidebase-host,
#                               relative paths are taken from the repo root)
#   TIDEBASE_TEST_BACKEND       postgres (default) | sqlite
#   TIDEBASE_TEST_DATABASE_URL  admin Postgres URL; a fresh tb_sdk_* database is
#                               created per server and dropped at the end
#                               (default postgres://postgres@127.0.0.1:5432/postgres)
# Extra arguments go to pytest, e.g. `tests/sdk-python/run.sh -k gate -x`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SDK="${TIDEBASE_SDK_VERSION:-0.7.0}"
case "$SDK" in
  0.5.0|0.7.0) ;;
  *) echo "run.sh: TIDEBASE_SDK_VERSION must be 0.5.0 or 0.7.0, not '$SDK'" >&2; exit 2 ;;
esac
VENV="$HERE/.venv-$SDK"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$HERE/requirements.txt" "tidebase==$SDK"

BIN="${TIDEBASE_HOST_BIN:-target/debug/tidebase-host}"
case "$BIN" in
  /*) ;;
  *) BIN="$ROOT/$BIN" ;;
esac
export TIDEBASE_HOST_BIN="$BIN"
export TIDEBASE_TEST_DATABASE_URL="${TIDEBASE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TIDEBASE_TEST_BACKEND="${TIDEBASE_TEST_BACKEND:-postgres}"

if [ ! -x "$TIDEBASE_HOST_BIN" ]; then
  echo "run.sh: server binary not found or not executable: $TIDEBASE_HOST_BIN (run cargo build first)" >&2
  exit 2
fi

cd "$HERE"
exec "$VENV/bin/python" -m pytest "$@"
