#!/usr/bin/env bash
# examples/compare: two-phase commit against sagas, side by side, on the same
# bank workload with the same seed (examples/bank), in three scenarios:
#   a) no faults;
#   b) contention: every transfer between a few hot accounts;
#   c) the coordinator crashes mid-run: the router (which holds the 2PC
#      coordinator and the saga engine) is killed with -9 a third of the way
#      in and restarted 2 s later.
# Writes OUT/report.md (throughput, p50/p99, aborts, retries, errors, the
# longest window without a committed transfer, audits that saw a wrong
# total) and OUT/throughput.svg (transfers per second over time for each
# mode and scenario, the crash window shaded, seconds with wrong audits
# marked).  Every number comes from this run.
#
#   examples/compare.sh [--out DIR] [--seconds S] [--clients C] [--seed N]
#
# Needs a build (scripts/build.sh); runs everything on 127.0.0.1 and stops
# what it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
out=$top/compare-report
secs=15
clients=8
seed=42
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "compare: unknown option $1" >&2; exit 2 ;;
	esac
done
bank=$build/examples/bank
sl=$build/shardlite
[ -x "$bank" ] && [ -x "$sl" ] || { echo "compare: build first (scripts/build.sh)" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-compare-XXXXXX")
trap 'for d in "$work"/*/; do "$sl" cluster stop --dir "$d" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT

crash_at=$(( secs / 3 )); down=2
# run SCENARIO MODE: one bank run, its output and timeline kept
run() {
	local sc=$1 mode=$2 dir=$work/$1-$2 port accounts=10000
	port=$(( 20000 + RANDOM % 10000 ))
	[ "$sc" = hot ] && accounts=8
	mkdir -p "$dir"
	echo "== scenario $sc, $mode: $clients clients, $accounts accounts, $secs s, seed $seed"
	"$bank" --mode "$mode" --seconds "$secs" --clients "$clients" --accounts "$accounts" --seed "$seed" \
		--port "$port" --dir "$dir" --keep --timeline "$out/$sc-$mode.timeline" >"$out/$sc-$mode.log" 2>&1 &
	local bpid=$!
	if [ "$sc" = crash ]; then
		# wait for the transfers to start, then crash the router
		local i
		for i in $(seq 1 600); do
			[ -s "$out/$sc-$mode.timeline" ] && break
			sleep 0.1
		done
		sleep "$crash_at"
		local rpid
		rpid=$(cat "$dir/router.pid")
		echo "   kill -9 router (pid $rpid) at about ${crash_at}s; restart ${down}s later"
		kill -9 "$rpid" 2>/dev/null || true
		sleep "$down"
		"$sl" cluster start --dir "$dir" >/dev/null 2>&1 || echo "   restart failed"
	fi
	wait "$bpid" || true
	"$sl" cluster stop --dir "$dir" >/dev/null 2>&1 || true
	grep -E "^  (transfers|latency|retries|aborts|unexpected|audits)|^(PASS|FAIL)" "$out/$sc-$mode.log" | sed 's/^/   /'
}

for sc in nofault hot crash; do
	for mode in 2pc saga; do run "$sc" "$mode"; done
done

python3 "$top/examples/compare_report.py" "$out" "$secs" "$crash_at" "$down" "$clients" "$seed"
echo
echo "report: $out/report.md   chart: $out/throughput.svg"
