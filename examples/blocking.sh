#!/usr/bin/env bash
# examples/blocking: two-phase commit's blocking window, shown and measured.
#
# A 2-shard cluster; the router (which holds the coordinator) is armed to
# crash at `coord-after-prepare`: the client's COMMIT of a cross-shard
# transfer reaches the coordinator, the first shard holds the transfer
# PREPARED, and the router dies before deciding (kill -9 semantics, see
# docs/failpoints.md).  Then, with the router down:
#   - the prepared row stays locked: a direct UPDATE of it on its shard
#     waits, and gets 40001 after the shard's lock timeout (5 s);
#   - every other row of that shard stays writable at once, and the held
#     row stays readable (its old value);
# and once the router is back, its first recovery sweep asks the deciding
# shard, finds no commit, rolls the prepared transfer back (presumed abort)
# and a writer that was waiting gets through.  It prints how long the row
# was blocked, and how long after the router's restart it was released.
# Sagas are the non-blocking alternative (examples/compare.sh).
#
#   examples/blocking.sh            (about 10 s; needs a build: scripts/build.sh)
#
# Runs everything on 127.0.0.1 and stops what it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sl=${BUILD:-$top/build}/shardlite
[ -x "$sl" ] || { echo "blocking: build first (scripts/build.sh)" >&2; exit 2; }
command -v psql >/dev/null || { echo "blocking: psql is needed (apt-get install postgresql-client-15)" >&2; exit 2; }
case ${1:-} in -h|--help) sed -n '2,20p' "$0"; exit 0 ;; esac
source "$top/tests/lib.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-blocking-XXXXXX")
port=$(pick_ports 8)
trap '"$sl" cluster stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=demo PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
sq() { timeout 15 "$sl" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }
say() { printf '\n== %s\n' "$*"; }

say "a 2-shard cluster on 127.0.0.1:$port, 20 accounts of 1000"
"$sl" cluster start --dir "$dir" --shards 2 --port "$port" >/dev/null
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)"
q "INSERT INTO accounts VALUES $(seq 1 20 | sed 's/.*/(&, 1000)/' | paste -sd,)"
on0=(); on1=()
for id in $(seq 1 20); do
	if q "EXPLAIN SELECT * FROM accounts WHERE id = $id" | grep -q "^Shard 0 "; then on0+=("$id"); else on1+=("$id"); fi
done
a=${on0[0]} other=${on0[1]} b=${on1[0]}
echo "account $a and $other live on shard 0, account $b on shard 1"
for _ in $(seq 50); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.1; done

say "the router restarts armed to crash once the participants are prepared (coord-after-prepare)"
kill -9 "$(cat "$dir/router.pid")"
sleep 0.2
SHARDLITE_FAILPOINTS=coord-after-prepare "$sl" cluster start --dir "$dir" >/dev/null
echo "BEGIN; UPDATE accounts ... - 10 WHERE id = $a; UPDATE accounts ... + 10 WHERE id = $b; COMMIT;"
out=$(printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "$a" "$b" |
	psql -X -A -t -f - 2>&1 || true)
t_crash=$(now_ms)
echo "psql: $(echo "$out" | tail -1)"
for _ in $(seq 50); do alive "$(cat "$dir/router.pid")" || break; sleep 0.1; done
alive "$(cat "$dir/router.pid")" && { echo "blocking: the router did not crash at the failpoint" >&2; exit 1; }
echo "router log: $(grep "failpoint coord-after-prepare" "$dir/router.log" | tail -1)"
echo "shard 0 holds, prepared (txn, decider shard + 1):"
sq 0 "SELECT txn, decider FROM _sl_prepared" | sed 's/^/   /'

say "the router is down: the prepared row is locked, everything else is not"
t0=$(now_ms)
sq 0 "UPDATE accounts SET balance = balance + 1 WHERE id = $other" >/dev/null
t1=$(now_ms)
echo "UPDATE of account $other on shard 0 (not held): $(sq 0 "SELECT balance FROM accounts WHERE id = $other") after $((t1 - t0)) ms"
sq 0 "UPDATE accounts SET balance = balance - 1 WHERE id = $other" >/dev/null
echo "SELECT of the held account $a: balance $(sq 0 "SELECT balance FROM accounts WHERE id = $a") (its value before the transfer)"
t0=$(now_ms)
res=$(sq 0 "UPDATE accounts SET balance = balance + 1 WHERE id = $a" 2>&1 || true)
echo "UPDATE of the held account $a: waited $(( $(now_ms) - t0 )) ms, then: $res"

say "a writer waits for account $a; the router restarts without failpoints"
( t0=$(now_ms); r=$(sq 0 "UPDATE accounts SET balance = balance + 1 WHERE id = $a" 2>&1)
  echo "$r $(( $(now_ms) - t0 ))" >"$dir/writer.out" ) &
wj=$!
sleep 0.2
t_restart=$(now_ms)
"$sl" cluster start --dir "$dir" >/dev/null
t_release=0
for _ in $(seq 100); do
	if [ -z "$(sq 0 "SELECT txn FROM _sl_prepared")" ]; then t_release=$(now_ms); break; fi
	sleep 0.05
done
wait "$wj" || true
read -r wres wok wms <"$dir/writer.out" || true
echo "the recovery sweep rolled the prepared transfer back (no commit decision: presumed abort)"
echo "the waiting writer: $wres $wok after $wms ms"
sq 0 "UPDATE accounts SET balance = balance - 1 WHERE id = $a" >/dev/null

say "result"
echo "balances: account $a $(q "SELECT balance FROM accounts WHERE id = $a"), account $b $(q "SELECT balance FROM accounts WHERE id = $b") (the transfer is on neither shard)"
echo "total: $(q "SELECT sum(balance) FROM accounts") (20 accounts of 1000)"
if [ "$t_release" -gt 0 ]; then
	echo "account $a was blocked for $((t_release - t_crash)) ms: the router was down for $((t_restart - t_crash)) ms, and the row was released $((t_release - t_restart)) ms after the router restarted"
else
	echo "account $a was not released within 5 s of the router's restart" >&2
	exit 1
fi
