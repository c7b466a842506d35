#!/usr/bin/env bash
# examples/rebalance: grow a loaded cluster while money keeps moving.
#
# Starts a 2-shard cluster through the bank demo (examples/bank: ACCOUNTS
# accounts, transfers by several clients, an auditor summing every balance),
# adds two shards with `shardlite cluster add-shard`, runs REBALANCE, and
# shows the moves live (SHOW REBALANCE: phase, rows copied, rate, the pause
# each cutover imposed).  Ends with rows per shard, the longest pause, and
# the bank's own verdict (every audit exact, no cent lost or created).
#
#   examples/rebalance.sh [--accounts N] [--seconds S] [--clients C] [--port P] [--keep]
#
# Needs a build (scripts/build.sh); everything runs on 127.0.0.1 and stops
# by itself (--keep leaves the cluster running for psql).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
accounts=100000
secs=30
clients=8
port=5433
keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--accounts) accounts=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "rebalance: unknown option $1" >&2; exit 2 ;;
	esac
done
sl=$build/shardlite
bank=$build/examples/bank
[ -x "$bank" ] && [ -x "$sl" ] || { echo "rebalance: build first (scripts/build.sh)" >&2; exit 2; }
command -v psql >/dev/null || { echo "rebalance: needs psql (postgresql-client)" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-rebalance-XXXXXX")
bpid=""
finish() {
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null || true
	if [ "$keep" = 0 ]; then
		"$sl" cluster stop --dir "$dir/cluster" >/dev/null 2>&1 || true
		rm -rf "$dir"
	fi
}
trap finish EXIT
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=demo PGDATABASE=shardlite
q() { psql -X -q -A -t -F ' | ' -c "$1"; }

echo "== starting a 2-shard cluster with $accounts accounts and $clients clients moving money for ${secs}s"
"$bank" --shardlite "$sl" --dir "$dir/cluster" --port "$port" --shards 2 --accounts "$accounts" \
	--clients "$clients" --seconds "$secs" --keep >"$dir/bank.out" 2>&1 &
bpid=$!
until [ "$(q "SELECT count(*) FROM accounts" 2>/dev/null)" = "$accounts" ]; do
	kill -0 "$bpid" 2>/dev/null || { cat "$dir/bank.out"; exit 1; }
	sleep 0.5
done
sleep 3
echo "== rows per shard before:"
for i in 0 1; do echo "   shard $i: $("$sl" shard-query "127.0.0.1:$((port + 1 + i))" "SELECT count(*) FROM accounts")"; done
echo "== adding two shards while the transfers run"
"$sl" cluster add-shard --dir "$dir/cluster"
"$sl" cluster add-shard --dir "$dir/cluster"
echo "== REBALANCE"
q "REBALANCE" 2>&1 | sed 's/^/   /'
t0=$(date +%s.%N)
while :; do
	show=$(q "SHOW REBALANCE")
	left=$(printf '%s\n' "$show" | grep -v '^$' | grep -vc ' | done | ' || true)
	done_n=$(printf '%s\n' "$show" | grep -c ' | done | ' || true)
	cur=$(printf '%s\n' "$show" | grep -v ' | done | ' | sed -n 1p | cut -d'|' -f1-7 || true)
	printf '\r   %3d moves done, %3d to go; now: %-90s' "$done_n" "$left" "${cur:-}"
	[ "$left" = 0 ] && break
	sleep 0.3
done
t1=$(date +%s.%N)
echo
echo "== the last moves (SHOW REBALANCE):"
q "SHOW REBALANCE" | sed -n "1,5s/^/   /p"
rows=0
for i in 2 3; do rows=$((rows + $("$sl" shard-query "127.0.0.1:$((port + 1 + i))" "SELECT count(*) FROM accounts"))); done
pause=$(q "SHOW rebalance_max_pause_ms")
printf '== moved %s rows to the new shards in %.1f s; the longest cutover pause was %s ms (the longest a statement waited: %s ms)\n' \
	"$rows" "$(echo "$t1 - $t0" | bc)" "$pause" "$(q "SHOW rebalance_max_wait_ms")"
echo "== rows per shard after:"
for i in 0 1 2 3; do echo "   shard $i: $("$sl" shard-query "127.0.0.1:$((port + 1 + i))" "SELECT count(*) FROM accounts")"; done
echo "== waiting for the bank to finish its run and its final audit"
rc=0
wait "$bpid" || rc=$?
bpid=""
grep -E "latency|PASS|FAIL" "$dir/bank.out" | tail -3 | sed "s/^/   /"
[ "$keep" = 1 ] && echo "== the cluster keeps running: psql -h 127.0.0.1 -p $port; stop: $sl cluster stop --dir $dir/cluster"
exit $rc
