#!/usr/bin/env bash
# Server CPU, tick time and bot-side RTT for ROOMS x BOTS_PER_ROOM bots on
# this machine: a thin wrapper around the load tester's benchmark
# (python -m tickroom.loadtest.bench), which starts one server process per run and
# spreads the bots over PROCS load processes.
#
#   bash benchmarks/bots.sh                          # 10 rooms x 8 bots, 30 s, one run
#   ROOMS=20 BOTS_PER_ROOM=10 RUNS=3 bash benchmarks/bots.sh
#   bash benchmarks/bots.sh --write docs/benchmarks.md   # extra flags go to tickroom.loadtest.bench
set -euo pipefail
cd "$(dirname "$0")/.."
ROOMS=${ROOMS:-10} BOTS_PER_ROOM=${BOTS_PER_ROOM:-8} DURATION=${DURATION:-30} RUNS=${RUNS:-1}
PROCS=${PROCS:-$(nproc)}
exec python -m tickroom.loadtest.bench --sizes "${ROOMS}x${BOTS_PER_ROOM}" --duration "$DURATION" --runs "$RUNS" \
  --processes "$PROCS" "$@"
