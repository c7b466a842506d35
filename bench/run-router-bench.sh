#!/usr/bin/env bash
# Router benchmarks, side by side with PostgreSQL 15 in the same run, with
# the same pgbench scripts:
#   bench/run-router-bench.sh [BUILD_DIR] [SECONDS] [ACCOUNTS] [WORKLOADS]
# WORKLOADS: all (default), select, transfer, tpcb, or saga (the transfer
# in 2PC and in saga mode on shardlite, PostgreSQL's transfer beside them:
# issue 5).
# - pgbench's built-in tpcb-like script (scale 1: 100,000 accounts, 10
#   tellers, 1 branch), tables loaded without COPY and zero balances, 8
#   clients; afterwards sum(abalance) = sum(tbalance) = sum(bbalance) =
#   sum(delta) of pgbench_history is checked on both systems (issue 4)
# - point SELECT by primary key, pgbench -M prepared, 8 clients (issue 3)
# Each row is two pgbench runs: tps from one without the transaction log,
# p50/p99 from one with it (-l).
# - bank transfer: two UPDATEs of random accounts in one transaction,
#   8 and 32 clients, --max-tries for 40001 (issue 4); accounts
#   hash-partitioned over 4 shards, so most transfers cross shards
# Needs PostgreSQL 15's server (Debian package postgresql-15) for the
# reference; everything runs on 127.0.0.1 and is stopped at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
secs=${2:-10}
naccounts=${3:-1000000}
workloads=${4:-all}
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/postgres" ] || { echo "PostgreSQL 15 server not found (apt-get install postgresql-15)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-rbench-XXXXXX")
chmod 755 "$work"
# ports below the ephemeral range, free when chosen (tests/lib.sh)
source "$(dirname "$0")/../tests/lib.sh"
sport=$(pick_ports 60) || { echo "no free ports"; exit 1; }; pport=$((sport + 50))
cleanup() {
  "$build/shardlite" cluster stop --dir "$work/sl" >/dev/null 2>&1 || true
  [ -f "$work/pg/postmaster.pid" ] && su postgres -c "$pgbin/pg_ctl -D $work/pg -m fast stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- PostgreSQL 15, fsync on (the default), on 127.0.0.1
mkdir -p "$work/pg" && chown postgres "$work/pg"
su postgres -c "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $work/pg -o '-p $pport -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=100' -l $work/pg/server.log start" >/dev/null
# --- shardlite, 4 shards
"$build/shardlite" cluster start --dir "$work/sl" --shards 4 --port "$sport" >/dev/null

pg()  { psql -X -q -h 127.0.0.1 -p "$pport" -U postgres -d postgres "$@"; }
sl()  { psql -X -q -h 127.0.0.1 -p "$sport" -U bench -d shardlite "$@"; }

pg -c "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)" \
   -c "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, $naccounts) g" -c "VACUUM ANALYZE accounts"
sl -c "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)"
t0=$(date +%s.%N)
for ((b = 0; b < naccounts / 1000; b++)); do
  printf 'INSERT INTO accounts VALUES '
  seq $((b * 1000 + 1)) $((b * 1000 + 1000)) | sed 's/.*/(&, 1000)/' | paste -sd, | tr -d '\n'
  echo ';'
done > "$work/load.sql"
sl -v ON_ERROR_STOP=1 -f "$work/load.sql" >/dev/null
t1=$(date +%s.%N)
echo "# loaded $naccounts accounts into shardlite in $(echo "$t1 - $t0" | bc) s"

cat > "$work/select.sql" <<SQL
\set aid random(1, $naccounts)
SELECT balance FROM accounts WHERE id = :aid;
SQL
cat > "$work/transfer.sql" <<SQL
\set src random(1, $naccounts)
\set dst random(1, $naccounts)
BEGIN;
UPDATE accounts SET balance = balance - 1 WHERE id = :src;
UPDATE accounts SET balance = balance + 1 WHERE id = :dst;
END;
SQL
sed -e 's/^BEGIN;/BEGIN SAGA;/' -e 's/^END;/COMMIT;/' "$work/transfer.sql" > "$work/transfer-saga.sql"

# run NAME HOSTPORT CLIENTS SCRIPT MODE -> one table row
run() {
  local name=$1 port=$2 clients=$3 script=$4 mode=$5 user=$6 db=$7
  local logdir="$work/log-$name-$clients-$RANDOM"; mkdir -p "$logdir"
  local out out2
  # throughput: a run without the per-transaction log (writing it costs
  # pgbench a lot of CPU on two cores); latency percentiles: a second run
  # with it
  # (the database is pgbench's last argument: its -d is --debug)
  out=$(pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -M "$mode" -c "$clients" \
        -j 2 -T "$secs" --max-tries=100 -f "$script" "$db" 2>&1)
  out2=$(cd "$logdir" && pgbench -h 127.0.0.1 -p "$port" -U "$user" -n -M "$mode" -c "$clients" \
        -j 2 -T "$secs" --max-tries=100 -l -r -f "$script" "$db" 2>&1)
  # mean latency of each statement (pgbench -r), for transfers: BEGIN,
  # the two UPDATEs, END (the commit)
  local per
  per=$(echo "$out2" | awk '$NF ~ /;$/ && $1 ~ /^[0-9.]+$/ {
          st = $0; sub(/^ *[0-9.]+( +[0-9]+ +[0-9]+)? +/, "", st); split(st, w, " "); printf "%s %s %s ms, ", w[1], w[2], $1 }')
  case "$script" in *transfer*) echo "# $name c=$clients mean per statement (pgbench -r): ${per%, }" >>"$work/commit.txt" ;; esac
  # shardlite's own figure for the two-phase commits (SHOW commit_latency_*:
  # its last 16,384 distributed commits, all from these runs when they hold
  # more; a quarter of the transfers stay on one shard and are not counted)
  case "$name:$script" in shardlite:*transfer.sql)
    local cl c50 c99 cn
    cl=$(psql -X -q -A -t -h 127.0.0.1 -p "$port" -U "$user" -d "$db" \
           -c "SHOW commit_latency_p50_ms" -c "SHOW commit_latency_p99_ms" -c "SHOW commit_latency_commits" | paste -sd' ')
    read -r c50 c99 cn <<<"$cl"
    echo "# $name c=$clients distributed commit latency (coordinator, last $cn commits): p50 $c50 ms, p99 $c99 ms" >>"$work/commit.txt" ;;
  esac
  local tps fails lat
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  fails=$(( $(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p') + \
            $(echo "$out2" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p') ))
  # transaction logs: 3rd field is the latency in microseconds
  lat=$(cat "$logdir"/pgbench_log.* | awk '{print $3}' | sort -n |
        awk '{a[NR]=$1} END {if (NR) printf "%.3f | %.3f", a[int(NR*0.5)+1]/1000, a[int(NR*0.99)+1]/1000}')
  printf '| %-10s | %-22s | %3d | %10.0f | %s | %s |\n' "$name" "$(basename "$script" .sql) -M $mode" "$clients" "$tps" "$lat" "${fails:-?}"
}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, ${secs}s per run, $naccounts accounts"
echo "| system     | workload               |  c  |    tps     | p50 ms | p99 ms | failed |"
echo "|------------|------------------------|-----|------------|--------|--------|--------|"
if [ "$workloads" = all ] || [ "$workloads" = select ]; then
  run postgres   "$pport" 8  "$work/select.sql"   prepared postgres postgres
  run shardlite  "$sport" 8  "$work/select.sql"   prepared bench shardlite
fi
if [ "$workloads" = all ] || [ "$workloads" = transfer ]; then
  run postgres   "$pport" 8  "$work/transfer.sql" prepared postgres postgres
  run shardlite  "$sport" 8  "$work/transfer.sql" prepared bench shardlite
  run postgres   "$pport" 32 "$work/transfer.sql" prepared postgres postgres
  run shardlite  "$sport" 32 "$work/transfer.sql" prepared bench shardlite
fi
if [ "$workloads" = saga ]; then
  for c in 8 32; do
    run postgres   "$pport" $c "$work/transfer.sql"      prepared postgres postgres
    run shardlite  "$sport" $c "$work/transfer.sql"      prepared bench shardlite
    run shardlite  "$sport" $c "$work/transfer-saga.sql" prepared bench shardlite
    run shardlite  "$sport" $c "$work/transfer.sql"      prepared bench shardlite
    run shardlite  "$sport" $c "$work/transfer-saga.sql" prepared bench shardlite
  done
fi
[ -s "$work/commit.txt" ] && cat "$work/commit.txt"
echo "# shardlite total after the transfers: $(sl -A -t -c 'SELECT sum(balance) FROM accounts') (expected $((naccounts * 1000)))"

if [ "$workloads" = all ] || [ "$workloads" = tpcb ]; then
  # PostgreSQL: pgbench's own tables, generated on the server (no COPY)
  PGPASSWORD= pgbench -h 127.0.0.1 -p "$pport" -U postgres -i -I dtGvp -s 1 postgres >/dev/null 2>&1
  # shardlite: the same tables partitioned by their keys; pgbench_history
  # (no key in pgbench) a reference table with a key the shards fill in
  sl -c "CREATE TABLE pgbench_branches (bid INT PRIMARY KEY, bbalance INT NOT NULL, filler CHAR(88)) PARTITION BY HASH (bid)" \
     -c "CREATE TABLE pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT NOT NULL, filler CHAR(84)) PARTITION BY HASH (tid)" \
     -c "CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT NOT NULL, filler CHAR(84)) PARTITION BY HASH (aid)" \
     -c "CREATE TABLE pgbench_history (hid INTEGER PRIMARY KEY, tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22))" \
     -c "INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0)" \
     -c "INSERT INTO pgbench_tellers (tid, bid, tbalance) VALUES $(seq 1 10 | sed 's/.*/(&, 1, 0)/' | paste -sd,)"
  for ((b = 0; b < 100; b++)); do
    printf 'INSERT INTO pgbench_accounts (aid, bid, abalance) VALUES '
    seq $((b * 1000 + 1)) $((b * 1000 + 1000)) | sed 's/.*/(&, 1, 0)/' | paste -sd, | tr -d '\n'
    echo ';'
  done > "$work/tpcb.sql"
  sl -v ON_ERROR_STOP=1 -f "$work/tpcb.sql" >/dev/null
  runb() {  # NAME PORT USER DB
    local out tps fails
    out=$(pgbench -h 127.0.0.1 -p "$2" -U "$3" -n -b tpcb-like -M prepared -c 8 -j 2 -T "$secs" --max-tries=100 "$4" 2>&1)
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    fails=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
    printf '| %-10s | %-22s | %3d | %10.0f | %s |\n' "$1" "tpcb-like -M prepared" 8 "${tps:-0}" "${fails:-?}"
  }
  sums() {  # psql function -> "a t b h"
    "$@" -A -t -c "SELECT sum(abalance) FROM pgbench_accounts" -c "SELECT sum(tbalance) FROM pgbench_tellers" \
      -c "SELECT sum(bbalance) FROM pgbench_branches" -c "SELECT sum(delta) FROM pgbench_history" | paste -sd' '
  }
  echo "| system     | workload               |  c  |    tps     | failed |"
  echo "|------------|------------------------|-----|------------|--------|"
  runb postgres  "$pport" postgres postgres
  runb shardlite "$sport" bench shardlite
  echo "# sums abalance tbalance bbalance delta: postgres $(sums pg), shardlite $(sums sl)"
fi
