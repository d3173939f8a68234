#!/usr/bin/env bash
# Fuzz the HTTP API against its own contract: schemathesis reads the
# OpenAPI document from a freshly started `tidebase-host serve` and sends
# generated requests (valid and invalid) to every operation. It fails on any
# 5xx answer, any answer that does not match the document, and any request
# not answered within the timeout.
#
#   TIDEBASE_HOST_BIN           server binary (default target/debug/tidebase-host)
#   TIDEBASE_TEST_BACKEND       postgres (default) | sqlite
#   TIDEBASE_TEST_DATABASE_URL  admin Postgres URL; a fresh tb_fuzz_* database
#                               is created and dropped
#                               (default postgres://postgres@127.0.0.1:5432/postgres)
#   FUZZ_MAX_EXAMPLES           generated cases per operation (default 50)
#   FUZZ_SEED                   fix the generator seed to replay a run
# Extra arguments go to `schemathesis run`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"

# CPython 3.11 before 3.11.8 (and 3.12 before 3.12.2) can raise "AST
# constructor recursion depth mismatch" inside hypothesis (CPython
# gh-106905), which aborts the run; use a newer interpreter when pyenv has one.
PYTHON=python3
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9](\.[0-9]+)?$' | sort -V -r); do
    PYTHON="$(pyenv root)/versions/$v/bin/python3"
    break
  done
fi
if [ ! -x "$VENV/bin/schemathesis" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

BIN="${TIDEBASE_HOST_BIN:-target/debug/tidebase-host}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
BACKEND="${TIDEBASE_TEST_BACKEND:-postgres}"
ADMIN="${TIDEBASE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if [ ! -x "$BIN" ]; then
  echo "fuzz: server binary not found: $BIN (run cargo build first)" >&2
  exit 2
fi

WORK="$(mktemp -d)"
SERVER_PID=""
DB=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql "$ADMIN" -qAt -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

case "$BACKEND" in
  postgres)
    DB="tb_fuzz_$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
    psql "$ADMIN" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE \"$DB\""
    URL="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, p.fragment)))' "$ADMIN" "$DB")"
    ;;
  sqlite) URL="sqlite:$WORK/fuzz.db" ;;
  *) echo "fuzz: TIDEBASE_TEST_BACKEND must be postgres or sqlite" >&2; exit 2 ;;
esac

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# An API key switches the credential broker's routes on (without one they
# answer 503 by design); every request carries it as the admin bearer.
KEY="fuzz-admin-key"
# Fuzzed webhook, channel and invoke URLs name arbitrary hosts: every
# outbound call goes to a closed local port through the proxy setting, so
# the server never sends traffic off this machine.
env -u DATABASE_URL -u NO_PROXY -u no_proxy -u TIDEBASE_CHALLENGE_SECRET \
  -u NODE_ENV -u TIDEBASE_ENV -u TIDEBASE_PROVE_RATE -u TIDEBASE_GRANT_RATE \
  TIDEBASE_API_KEY="$KEY" ALL_PROXY="http://127.0.0.1:9" HTTP_PROXY="http://127.0.0.1:9" HTTPS_PROXY="http://127.0.0.1:9" \
  TIDEBASE_WEBHOOK_TIMEOUT_MS=2000 RUST_LOG=warn \
  "$BIN" serve --bind 127.0.0.1 --port "$PORT" --database-url "$URL" --data-dir "$WORK/data" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$BASE/health" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz: server exited before answering /health:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  sleep 0.2
done

# The event stream never ends by design, and proving a `spire` agent is a 501
# by specification (broker.md §4.2), so neither is fuzzed here (the e2e suite
# covers both).
status=0
cd "$WORK" # hypothesis keeps its example database in the working directory
"$VENV/bin/schemathesis" run "$BASE/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${FUZZ_MAX_EXAMPLES:-50}" \
  ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
  --request-timeout 10 \
  --header "Authorization: Bearer $KEY" \
  --workers 2 \
  --exclude-path '/runs/{id}/events' \
  --exclude-path '/agents/{agentId}/prove' \
  --suppress-health-check all \
  --no-color \
  "$@" || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "fuzz: the server died during the run" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "--- server log tail ($BACKEND) ---" >&2
  tail -n 80 "$WORK/server.log" >&2
fi
echo "fuzz ($BACKEND): $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
