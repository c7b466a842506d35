#!/usr/bin/env bash
# Shard benchmark, side by side with plain SQLite in the same run:
#   bench/run-shard-bench.sh [BUILD_DIR] [CONNS] [SECONDS]
# Starts one shard on 127.0.0.1 in a temporary directory, runs
# bench/shard_bench against it (autocommit, 2pc, 2pc-begin) and against a
# plain SQLite file (WAL, synchronous=FULL, one fsync per commit), stops the
# shard.  Nothing is timed inside the test suite.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
conns=${2:-16}
secs=${3:-5}
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-bench-XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/shardlite" shard --id 0 --listen 127.0.0.1:$port --data "$dir/shard" 2>"$dir/shard.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  "$build/shardlite" shard-query 127.0.0.1:$port "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.05
done
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $conns connections, ${secs}s per workload"
"$build/bench/shard_bench" --shard 127.0.0.1:$port --conns "$conns" --seconds "$secs" --sqlite-ref "$dir/ref.db"
