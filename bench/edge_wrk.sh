#!/usr/bin/env bash
# Edge capacity with a C load generator (wrk, `apt-get install wrk`): single-event requests with
# unique events, acknowledged only after fsync, against a fresh `koppla up --demo`. Prints wrk's
# report, then waits until every acknowledged event is queryable and prints how long that took.
# Usage: bench/edge_wrk.sh [seconds=10] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${1:-10}; CONNS=${2:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
HOME_DIR=$(mktemp -d /tmp/koppla-wrk-XXXX); PORT=$((20000 + RANDOM % 20000))
DS=6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90
.venv/bin/koppla up --demo --no-demo-shop --home "$HOME_DIR" --port "$PORT" >"$HOME_DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk: 1 thread, $CONNS connections, ${SECONDS_}s, single-event requests, fsync on"
wrk -t1 -c"$CONNS" -d"${SECONDS_}s" --latency -s bench/edge_wrk.lua \
  "http://127.0.0.1:$PORT/ee/v1/interact?configId=$DS" -- "run$RANDOM" | tee "$HOME_DIR/wrk.txt"
ACKED=$(awk '/requests in/ {print $1}' "$HOME_DIR/wrk.txt")
NON2XX=$(awk '/Non-2xx/ {print $NF}' "$HOME_DIR/wrk.txt"); ACKED=$((ACKED - ${NON2XX:-0}))
START=$(date +%s.%N)
for _ in $(seq 1 600); do
  STORED=$(.venv/bin/koppla query --home "$HOME_DIR" --json "SELECT count(*) FROM demo_events" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0][0])')
  [ "$STORED" -ge "$ACKED" ] && break; sleep 0.2
done
END=$(date +%s.%N)
echo "acknowledged (2xx): $ACKED; stored: $STORED; backlog queryable after $(python3 -c "print(round($END-$START,2))") s"
