#!/usr/bin/env bash
# What Postgres itself allows the loads of tidebase-bench on this machine:
# pgbench sends the statements tidebase-host sends for each load (see
# scripts.py) from 16 clients, on a fresh migrated database. Each round
# takes the commit ceiling (best of three 5 s samples, as the bench takes
# it) and then each load, so they share the same minutes. A load's steps
# per second over the ceiling is about the best ratio any server sending
# those statements could reach here.
#
# usage: bench/pgbench/run.sh [rounds (3)] [seconds per load (15)]
# Needs pgbench and psql, and a release build of tidebase-host (migrate).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
host=$here/../../target/release/tidebase-host
admin=${TIDEBASE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
rounds=${1:-3}
secs=${2:-15}
clients=16
db=tb_pgbench_$$
url=${admin%/*}/$db
dir=$(mktemp -d)
cleanup() {
  rm -rf "$dir"
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db"
}
trap cleanup EXIT

[ -x "$host" ] || { echo "build it first: cargo build --release -p tidebase-host" >&2; exit 1; }
psql "$admin" -qc "CREATE DATABASE $db"
"$host" migrate --database-url "$url" >"$dir/migrate" 2>&1 || { cat "$dir/migrate" >&2; exit 1; }
psql "$url" -qc "CREATE TABLE commit_ceiling (id TEXT PRIMARY KEY, payload TEXT NOT NULL)"
python3 "$here/scripts.py" "$dir"

busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
TIMEFORMAT='%U %S'
printf '%-6s %-9s %10s %10s %11s %14s %15s\n' round load "tx/s" "steps/s" "of ceiling" \
  "pgbench cores" "machine cores"
for round in $(seq 1 "$rounds"); do
  ceiling=0
  for load in ceiling ceiling ceiling wasm-run http-run replay; do
    vars=()
    if [ "$load" = replay ]; then
      # A completed step of a run the HTTP load wrote.
      vars=(-D "run=$(psql "$url" -Atc "SELECT run_id FROM steps WHERE name = 'step-3' LIMIT 1")")
    fi
    before=$(busy)
    duration=$([ "$load" = ceiling ] && echo 5 || echo "$secs")
    { time pgbench -n -M prepared -c "$clients" -j 2 -T "$duration" "${vars[@]}" \
        -f "$dir/$load.sql" "$url" >"$dir/out" 2>&1; } 2>"$dir/cpu" || true
    after=$(busy)
    tps=$(awk '/^tps = /{print $3}' "$dir/out")
    [ -n "$tps" ] || { cat "$dir/out" >&2; exit 1; }
    steps=$(sed -n 's/^-- steps per transaction: //p' "$dir/$load.sql")
    if [ "$load" = ceiling ]; then
      ceiling=$(awk -v a="$ceiling" -v b="$tps" 'BEGIN {print (b > a ? b : a)}')
    fi
    awk -v r="$round" -v l="$load" -v tps="$tps" -v n="$steps" -v ceiling="$ceiling" \
        -v s="$duration" -v b0="$before" -v b1="$after" -v cpu="$(cat "$dir/cpu")" 'BEGIN {
      split(cpu, c, " ")
      ratio = l == "ceiling" ? "" : sprintf("%.1f%%", 100 * tps * n / ceiling)
      printf "%-6s %-9s %10.0f %10.0f %11s %14.2f %15.2f\n", r, l, tps, tps * n, ratio,
        (c[1] + c[2]) / s, (b1 - b0) / 100 / s
    }'
  done
done
