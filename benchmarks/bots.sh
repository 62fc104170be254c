#!/usr/bin/env bash
# Server tick time and bot-side RTT for ROOMS x BOTS_PER_ROOM bots on this
# machine: one server process, the bots spread over PROCS load processes
# (one process cannot drive more than ~20 trio-websocket bots at 20 Hz).
#
#   bash benchmarks/bots.sh                 # 10 rooms x 8 bots, 30 s
#   ROOMS=20 DURATION=60 bash benchmarks/bots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOMS=${ROOMS:-10} BOTS_PER_ROOM=${BOTS_PER_ROOM:-8} DURATION=${DURATION:-30} PORT=${PORT:-7450}
PROCS=${PROCS:-5}
out=$(mktemp -d)
python -m server serve --host 127.0.0.1 --port "$PORT" --stats-interval 10 > "$out/server.log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out/server.log" && break; sleep 0.1; done
for p in $(seq 1 "$PROCS"); do
  python -m loadtest --url "ws://127.0.0.1:$PORT" --rooms $((ROOMS / PROCS)) --bots-per-room "$BOTS_PER_ROOM" \
    --duration "$DURATION" --seed "$p" --report "$out/bots-$p.json" > /dev/null 2>&1 &
done
sleep 12
t0=$(awk '{print $14 + $15}' /proc/$server/stat)
sleep 10
t1=$(awk '{print $14 + $15}' /proc/$server/stat)
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
ccu=$((ROOMS * BOTS_PER_ROOM))
echo "server CPU: $(( (t1 - t0) * 10 )) ms per 10 s at $ccu CCU = $(python3 -c "print(round(($t1 - $t0) * 10 / 10 / $ccu, 3))") ms per CCU-second"
grep "load:" "$out/server.log" | tail -3
python3 - "$out" <<'PY'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/bots-*.json")):
    r = json.load(open(path))
    print(path.rsplit("/", 1)[1], "connected", r["connected"], "errors", r["errors"], "rtt_ms", r["rtt_ms"],
          "snapshot_interval_ms", r["snapshot_interval_ms"], "bytes_in_per_bot_s", r["bytes_in_per_bot_s"])
PY
