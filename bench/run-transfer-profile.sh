#!/usr/bin/env bash
# Where a transfer's time goes: one pgbench transfer run against a fresh
# 4-shard cluster on 127.0.0.1, with what each process spent on it:
#   bench/run-transfer-profile.sh [BUILD_DIR] [SECONDS] [CLIENTS] [ACCOUNTS] [MODE]
# MODE: 2pc (BEGIN ... END, default) or saga (BEGIN SAGA ... COMMIT).
# Prints transfers/s and pgbench's mean latency per statement, then per
# process (router, each shard, pgbench) its CPU and its voluntary and
# involuntary context switches per transfer (from /proc, all threads, over
# the middle of the run); with PROFILE_SYSCALLS=1, and if perf can count
# system calls here (root, or kernel.perf_event_paranoid <= 1), also the
# system calls per transfer of the whole machine (counting them costs CPU:
# the CPU figures of such a run are a little higher).  A measurement, not
# a comparison: compare rows of one run only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-10}
clients=${3:-8}
n=${4:-1000000}
mode=${5:-2pc}
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-profile-XXXXXX")
chmod 755 "$work"
port=$(pick_ports 8) || { echo "no free ports"; exit 1; }
cleanup() { "$build/shardlite" cluster stop --dir "$work/sl" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
transfer_cluster "$build" "$work" "$port" "$n" "$mode"
sl() { psql -X -q -h 127.0.0.1 -p "$port" -U bench -d shardlite "$@"; }

# per process: "name cpu_ticks voluntary involuntary", all threads
snap() {
  local p name
  for p in "$@"; do
    [ -r "/proc/$p/cmdline" ] || continue  # gone (pgbench, at the end)
    name=$(tr '\0' ' ' < "/proc/$p/cmdline" | awk '{print ($2 == "shard") ? "shard-" $4 : $2}')
    [ "$(basename "$(readlink "/proc/$p/exe")")" = pgbench ] && name=pgbench
    for t in /proc/"$p"/task/*; do
      awk '{print $14 + $15}' "$t/stat"
      awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {i = $2} END {print v, i}' "$t/status"
    done | paste - - | awk -v n="$name" '{c += $1; v += $2; i += $3} END {print n, c, v, i}'
  done
}
pids=$(cat "$work"/sl/*.pid | paste -sd' ')
perf_events=""
for s in fdatasync fcntl pwrite64 pread64 write read sendmsg sendto recvfrom epoll_wait futex ppoll; do
  perf_events+="syscalls:sys_enter_$s,"
done
use_perf=0
if [ "${PROFILE_SYSCALLS:-0}" = 1 ] && command -v perf >/dev/null && perf stat -a -e syscalls:sys_enter_read -o /dev/null -- true 2>/dev/null; then
  use_perf=1
fi
# (the database is pgbench's last argument: its -d is --debug)
pgbench -h 127.0.0.1 -p "$port" -U bench -n -M prepared -c "$clients" -j 2 -T "$secs" \
  --max-tries=100 -r -f "$work/t.sql" shardlite > "$work/pgbench.out" 2>&1 &
pg=$!
# measured: the middle of the run (a fifth of it left out at each end)
lead=$((secs / 5)); [ "$lead" -ge 1 ] || lead=1
window=$((secs - 2 * lead - 1)); [ "$window" -ge 1 ] || { echo "SECONDS too short"; exit 1; }
sleep "$lead"
all="$pids $pg"
snap $all > "$work/s0"
t0=$(date +%s.%N)
if [ "$use_perf" = 1 ]; then
  perf stat -a -x, -e "${perf_events%,}" -o "$work/perf.txt" -- sleep "$window" >/dev/null 2>&1 || use_perf=0
else
  sleep "$window"
fi
t1=$(date +%s.%N)
snap $all > "$work/s1"
wait "$pg"
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out")
# transfers inside the measured window
tx=$(echo "$tps * ($t1 - $t0)" | bc)
hz=$(getconf CLK_TCK)
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $mode transfers, $clients clients, $n accounts, ${secs}s"
echo "transfers/s: $tps"
echo "mean latency per statement (ms): $(awk '$NF ~ /;$/ && $1 ~ /^[0-9.]+$/ {
        st = $0; sub(/^ *[0-9.]+( +[0-9]+ +[0-9]+)? +/, "", st); split(st, w, " ");
        printf "%s %s %s, ", w[1], w[2], $1 }' "$work/pgbench.out" | sed 's/, $//')"
echo "| process | CPU ms per transfer | voluntary cs per transfer | involuntary cs per transfer |"
echo "|---|---|---|---|"
join <(sort "$work/s0") <(sort "$work/s1") | awk -v tx="$tx" -v hz="$hz" '
  { printf "| %s | %.3f | %.2f | %.2f |\n", $1, ($5 - $2) * 1000 / hz / tx, ($6 - $3) / tx, ($7 - $4) / tx }'
if [ "$use_perf" = 1 ]; then
  echo "system calls per transfer (whole machine): $(awk -F, -v tx="$tx" '$3 ~ /sys_enter_/ {
          sub(/.*sys_enter_/, "", $3); printf "%s %.1f, ", $3, $1 / tx }' "$work/perf.txt" | sed 's/, $//')"
elif [ "${PROFILE_SYSCALLS:-0}" = 1 ]; then
  echo "system calls: perf cannot count them here (not root, or kernel.perf_event_paranoid > 1)"
fi
echo "total after the run: $(sl -A -t -c 'SELECT sum(balance) FROM accounts') (expected $((n * 1000)))"
