#!/usr/bin/env bash
# Rebalancing benchmark (issue 6): ACCOUNTS rows on 2 shards under a steady
# bank load (8 clients, 2PC transfers), then 2 shards added and REBALANCE.
# Reports the copy rate (rows moved / time from REBALANCE to the last move
# done), the longest cutover pause (the gate's longest closed time: no
# client statement waited longer), and the bank's throughput per second
# before and during the moves (from its timeline).
#   bench/run-rebalance-bench.sh BUILD_DIR [ACCOUNTS] [SECONDS] [AUDIT_EVERY_MS]
# AUDIT_EVERY_MS: the bank's auditor waits that long between two audits
# (default 0: back to back, a full scan of every account at all times).
# SECONDS "noload": no bank at all, the rebalancer alone (rows loaded by
# multi-row INSERTs; copy rate, longest pause and three moves' breakdown).
# KEEP_LOG=FILE keeps a copy of the router's log (each move's story).
set -euo pipefail
build=${1:-build}
accounts=${2:-1000000}
seconds=${3:-60}
audit_every=${4:-0}
bin=$build/shardlite
dir=$(mktemp -d /tmp/shardlite-rbbench-XXXXXX)
trap '"$bin" cluster stop --dir "$dir/c" >/dev/null 2>&1; [ -n "${KEEP_LOG:-}" ] && cp "$dir/c/router.log" "$KEEP_LOG"; rm -rf "$dir"' EXIT
port=$(python3 -c 'import random; print(random.randrange(20000, 30000))')
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=bench PGDATABASE=shardlite
q() { psql -X -q -A -t -c "$1"; }
# two more shards, REBALANCE, wait until every move is done: t0..t1
grow_and_rebalance() {
  "$bin" cluster add-shard --dir "$dir/c" >/dev/null
  "$bin" cluster add-shard --dir "$dir/c" >/dev/null
  t0=$(date +%s.%N)
  q "REBALANCE" >/dev/null
  # tc: every move cut over (its rows copied, clients on the new owner:
  # phase cleanup or done); t1: every source's rows deleted too
  until [ "$(q "SHOW REBALANCE" | grep -Evc '[|](done|cleanup)[|]')" = 0 ]; do sleep 0.1; done
  tc=$(date +%s.%N)
  until [ "$(q "SHOW REBALANCE" | grep -vc '|done|')" = 0 ]; do sleep 0.1; done
  t1=$(date +%s.%N)
}
rates() {  # $rows over t0..tc and t0..t1
  echo "copied and cut over in $(echo "$tc - $t0" | bc) s: $(echo "$rows / ($tc - $t0)" | bc) rows/s;" \
       "sources cleaned up $(echo "$t1 - $tc" | bc) s later: $(echo "$rows / ($t1 - $t0)" | bc) rows/s overall"
}
if [ "$seconds" = noload ]; then
  "$bin" cluster start --dir "$dir/c" --shards 2 --port "$port" >/dev/null
  q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)"
  for ((b = 0; b < accounts / 1000; b++)); do
    printf 'INSERT INTO accounts VALUES '
    seq $((b * 1000 + 1)) $((b * 1000 + 1000)) | sed 's/.*/(&, 1000)/' | paste -sd, | tr -d '\n'
    echo ';'
  done > "$dir/load.sql"
  psql -X -q -v ON_ERROR_STOP=1 -f "$dir/load.sql" >/dev/null
  grow_and_rebalance
  rows=0
  for i in 2 3; do rows=$((rows + $("$bin" shard-query "127.0.0.1:$((port + 1 + i))" "SELECT count(*) FROM accounts"))); done
  echo "no load: rows moved: $rows, $(rates)"
  echo "longest cutover pause: $(q "SHOW rebalance_max_pause_ms") ms"
  echo "total: $(q "SELECT count(*), sum(balance) FROM accounts") (loaded $accounts|$((accounts * 1000)))"
  grep "rebalance: move" "$dir/c/router.log" | sed -n '2p;10p;20p' | sed 's/^router: rebalance: //'
  exit 0
fi
"$build/examples/bank" --shardlite "$bin" --dir "$dir/c" --port "$port" --shards 2 --accounts "$accounts" \
	--clients 8 --seconds "$seconds" --seed 1 --timeline "$dir/timeline" --audit-every "$audit_every" --keep >"$dir/bank.out" 2>&1 &
bpid=$!
until [ "$(q "SELECT count(*) FROM accounts" 2>/dev/null)" = "$accounts" ]; do sleep 0.5; done
until [ -s "$dir/timeline" ] && [ "$(wc -l <"$dir/timeline")" -ge 8 ]; do sleep 0.5; done
before=$(wc -l <"$dir/timeline")
grow_and_rebalance
during=$(wc -l <"$dir/timeline")
q "SHOW REBALANCE" >"$dir/moves"
wait $bpid || true
rows=0
for i in 2 3; do rows=$((rows + $("$bin" shard-query "127.0.0.1:$((port + 1 + i))" "SELECT count(*) FROM accounts"))); done
pause=$(q "SHOW rebalance_max_pause_ms")
wait_ms=$(q "SHOW rebalance_max_wait_ms")
nmoves=$(awk -F'|' '$1 > n {n = $1} END {print n}' "$dir/moves")
echo "rows moved: $rows in $nmoves moves, $(rates)"
echo "longest cutover pause: $pause ms; longest a client statement waited at a gate: $wait_ms ms"
echo "moves (the last 5):"; head -5 "$dir/moves" | cut -d"|" -f1-6,9,10
echo "shards: $(q "SHOW SHARDS" | awk -F'|' '{printf "%s=%s buckets ", $1, $4}')"
echo "timeline (second, committed, wrong audits, audits, errors); moves ran from line $before to $during:"
cat "$dir/timeline"
grep -E "transfers/s|p50|p99|PASS|FAIL" "$dir/bank.out" | tail -6
# foreground latency: transfers that ended before REBALANCE (timeline
# seconds 1..before-1), while moves ran (before..during-1), and after
if [ -s "$dir/timeline.lat" ]; then
  window() {  # FROM TO (seconds, inclusive) -> "n N, p50 X ms, p99 Y ms"
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b {print $2}' "$dir/timeline.lat" | sort -n |
      awk '{v[NR] = $1} END {if (NR) printf "n %d, p50 %.2f ms, p99 %.2f ms", NR, v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000; else printf "n 0"}'
  }
  echo "transfer latency before the moves:  $(window 1 $((before - 1)))"
  echo "transfer latency while they ran:     $(window "$before" $((during - 1)))"
  echo "transfer latency after:              $(window "$during" 1000000)"
fi
