#!/usr/bin/env bash
# The main job: install what is missing, build, start a local 4-shard
# cluster on 127.0.0.1 and run a smoke check against every shard.
#   scripts/demo.sh [--keep]     --keep leaves the cluster running
# (The bank-transfer demo replaces this once the router and the coordinator
# exist; see issues 3, 4 and 7.)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1
"$top/scripts/install-deps.sh"
dir=$("$top/scripts/build.sh" | tail -n 1)
bin="$dir/shardlite"
cdir=${DEMO_DIR:-/tmp/shardlite-demo}
port=${DEMO_PORT:-5433}
shards=4

"$bin" cluster start --dir "$cdir" --shards $shards --port "$port"
cleanup() { [ $keep -eq 1 ] || "$bin" cluster stop --dir "$cdir" >/dev/null; }
trap cleanup EXIT

echo "smoke check:"
total=0
for i in $(seq 0 $((shards - 1))); do
  addr="127.0.0.1:$((port + 1 + i))"
  "$bin" shard-query "$addr" "CREATE TABLE IF NOT EXISTS smoke(id INTEGER PRIMARY KEY, shard INTEGER NOT NULL, at TEXT)" >/dev/null
  "$bin" shard-query "$addr" "INSERT INTO smoke(shard, at) VALUES ($i, datetime('now'))" >/dev/null
  n=$("$bin" shard-query "$addr" "SELECT count(*) FROM smoke WHERE shard = $i")
  echo "  shard $i at $addr: $n smoke row(s)"
  total=$((total + n))
done
"$bin" cluster status --dir "$cdir"
echo "smoke check passed: $total rows written and read back across $shards shards"
if [ $keep -eq 1 ]; then
  echo "cluster left running in $cdir; stop it with: $bin cluster stop --dir $cdir"
fi
