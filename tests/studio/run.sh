#!/usr/bin/env bash
# Studio in a real browser: Debian's Chromium, driven by Playwright for
# Python, against a freshly started `tidebase-host serve`.
#
#   TIDEBASE_HOST_BIN             server binary (default target/debug/tidebase-host)
#   TIDEBASE_TEST_BACKEND         postgres (default) | sqlite
#   TIDEBASE_TEST_DATABASE_URL    admin Postgres URL (a fresh database per server)
#   TIDEBASE_CHROMIUM             browser binary (default: chromium on PATH)
#   TIDEBASE_STUDIO_SCREENSHOTS   where the views' screenshots go
#                                 (default docs/screenshots)
# Nothing here downloads a browser: Playwright only drives the system one.
# Extra arguments go to pytest, e.g. `tests/studio/run.sh -k auth -x`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"

CHROMIUM="${TIDEBASE_CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: no Chromium found; install Debian's (apt-get install -y chromium) or set TIDEBASE_CHROMIUM" >&2
  exit 2
fi
export TIDEBASE_CHROMIUM="$CHROMIUM"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

BIN="${TIDEBASE_HOST_BIN:-target/debug/tidebase-host}"
case "$BIN" in
  /*) ;;
  *) BIN="$ROOT/$BIN" ;;
esac
if [ ! -x "$BIN" ]; then
  echo "run.sh: server binary not found or not executable: $BIN (run cargo build first)" >&2
  exit 2
fi
export TIDEBASE_HOST_BIN="$BIN"
export TIDEBASE_TEST_DATABASE_URL="${TIDEBASE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TIDEBASE_TEST_BACKEND="${TIDEBASE_TEST_BACKEND:-postgres}"
export TIDEBASE_STUDIO_SCREENSHOTS="${TIDEBASE_STUDIO_SCREENSHOTS:-$ROOT/docs/screenshots}"
# Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

cd "$HERE"
exec "$VENV/bin/python" -m pytest "$@"
