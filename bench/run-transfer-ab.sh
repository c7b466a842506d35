#!/usr/bin/env bash
# A/B of two shardlite builds on the pgbench transfer, interleaved rounds,
# a fresh 4-shard cluster per run, on 127.0.0.1:
#   bench/run-transfer-ab.sh BUILD_A BUILD_B [SECONDS] [ROUNDS] [MODE] [CLIENTS]
# MODE: 2pc (BEGIN ... END, default) or saga (BEGIN SAGA ... COMMIT).
# 200,000 accounts hash-partitioned over 4 shards; prints tps per run, and
# per run the CPU of shardlite's processes and their context switches per
# transfer (from /proc, over the middle of the run).
set -euo pipefail
a=${1:?build A}; b=${2:?build B}; secs=${3:-10}; rounds=${4:-2}; mode=${5:-2pc}; clients=${6:-8}
n=200000
# ports below the ephemeral range, free when chosen (tests/lib.sh): in it, a
# shard could find its port taken by some connection's local end
source "$(dirname "$0")/../tests/lib.sh"
source "$(dirname "$0")/lib.sh"
one() {  # BUILD -> "tps cpu_ms ctx"
  local build=$1 work port
  work=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-ab-XXXXXX"); chmod 755 "$work"
  port=$(pick_ports 8)
  transfer_cluster "$build" "$work" "$port" "$n" "$mode"
  pids=$(cat "$work"/sl/*.pid | paste -sd' ')
  snap() { for p in $pids; do for t in /proc/$p/task/*; do
             awk '/^voluntary_ctxt|^nonvoluntary_ctxt/ {s += $2} END {printf "%d ", s}' "$t/status"
             awk '{print $14 + $15}' "$t/stat"; done; done | awk '{c += $1; u += $2} END {print c, u}'; }
  ( sleep $((secs / 4)); snap > "$work/s1"; sleep $((secs / 2)); snap > "$work/s2" ) &
  # (the database is pgbench's last argument: its -d is --debug)
  local out; out=$(pgbench -h 127.0.0.1 -p "$port" -U bench -n -M prepared -c "$clients" -j 2 \
                  -T "$secs" --max-tries=100 -f "$work/t.sql" shardlite 2>&1)
  wait
  local tps; tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  read -r c1 u1 < "$work/s1"; read -r c2 u2 < "$work/s2"
  local span=$((secs / 2))
  awk -v t="$tps" -v c=$((c2 - c1)) -v u=$((u2 - u1)) -v s=$span \
    'BEGIN {printf "%.0f tps, %.3f ms CPU and %.1f context switches per transfer\n", t, u * 10 / s / t, c / s / t}'
  "$build/shardlite" cluster stop --dir "$work/sl" >/dev/null 2>&1 || true
  rm -rf "$work"
}
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $mode, $clients clients, ${secs}s per run"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r A ($a): $(one "$a")"
  echo "round $r B ($b): $(one "$b")"
done
