#!/usr/bin/env bash
# The main job: install what is missing, build, and run the bank demo
# (examples/bank.c): a local 4-shard cluster on 127.0.0.1, 10,000 accounts,
# 8 clients moving money between them in cross-shard transactions for 10 s
# while an auditor sums every balance; it reports throughput, latency,
# retries and aborts, and PASS/FAIL on whether any cent was lost or created.
#   scripts/demo.sh [--keep] [bank options]   --keep leaves the cluster running
# Other options go to the bank program (scripts/demo.sh --help lists them);
# DEMO_PORT (default 5433) and DEMO_DIR (default: a temporary directory) pick
# the router's port and the cluster's directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
dir=$("$top/scripts/build.sh" | tail -n 1)

args=(--shardlite "$dir/shardlite" --port "${DEMO_PORT:-5433}")
[ -n "${DEMO_DIR:-}" ] && args+=(--dir "$DEMO_DIR")
exec "$dir/examples/bank" "${args[@]}" "$@"
