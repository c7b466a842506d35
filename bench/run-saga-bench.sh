#!/usr/bin/env bash
# Sagas against two-phase commit on the same bank workload, in the same run
# (issue 5):
#   bench/run-saga-bench.sh [BUILD_DIR] [SECONDS] [ROUNDS] [CLIENTS] [ACCOUNTS]
# Each round runs examples/bank once with --mode 2pc and once with
# --mode saga (a fresh 4-shard cluster each, 127.0.0.1, stopped at the end):
# CLIENTS clients do transfers between random accounts for SECONDS while an
# auditor sums every balance in a loop.  Rounds alternate the modes so that a
# noisy machine hurts both alike.  Prints a Markdown table: transfers/s,
# p50/p99 latency, aborts, audits and audits that saw a wrong total, and
# whether the bank's own checks passed (final total exact, every account
# matching the committed transfers).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-15}
rounds=${3:-3}
clients=${4:-8}
accounts=${5:-10000}
bank=$build/examples/bank
[ -x "$bank" ] || { echo "build first: $bank not found"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-sbench-XXXXXX")
trap 'rm -rf "$work"' EXIT

run() {  # mode round -> one table row
	local mode=$1 r=$2 out port
	port=$(( 20000 + RANDOM % 10000 ))
	out=$("$bank" --mode "$mode" --seconds "$secs" --clients "$clients" --accounts "$accounts" \
		--port "$port" --dir "$work/$mode-$r" 2>&1) || true
	local tps p50 p99 aborts audits wrong verdict
	tps=$(sed -n 's/^  transfers committed .*: \([0-9,]*\) per second/\1/p' <<<"$out" | tr -d ,)
	p50=$(sed -n 's/^  latency (committed) *p50 \([0-9.]*\) ms.*/\1/p' <<<"$out")
	p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -1)
	aborts=$(sed -n 's/^  aborts *\([0-9,]*\).*/\1/p' <<<"$out" | tr -d ,)
	audits=$(sed -n 's/^  audits *\([0-9,]*\), \([0-9,]*\) with.*/\1/p' <<<"$out" | tr -d ,)
	wrong=$(sed -n 's/^  audits *\([0-9,]*\), \([0-9,]*\) with.*/\2/p' <<<"$out" | tr -d ,)
	verdict=$(grep -o '^PASS\|^FAIL' <<<"$out" | head -1)
	echo "| $r | $mode | ${tps:-?} | ${p50:-?} | ${p99:-?} | ${aborts:-?} | ${audits:-?} | ${wrong:-?} | ${verdict:-?} |"
	echo "$mode ${tps:-0}" >>"$work/tps"
}

echo "bank workload: $clients clients, $accounts accounts on 4 shards, $secs s per run, $rounds rounds"
echo "machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| round | mode | transfers/s | p50 ms | p99 ms | aborts | audits | wrong audits | bank checks |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then run 2pc "$r"; run saga "$r"; else run saga "$r"; run 2pc "$r"; fi
done
awk '{ s[$1] += $2; n[$1]++ } END {
	a = s["2pc"] / n["2pc"]; b = s["saga"] / n["saga"];
	printf "\nmean transfers/s: 2PC %.0f, saga %.0f: saga/2PC = %.2fx\n", a, b, (a > 0 ? b / a : 0) }' "$work/tps"
