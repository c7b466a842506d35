#!/usr/bin/env bash
# pgbench against a real cluster: point selects in all three query modes,
# and concurrent cross-shard transfers (retried on 40001) that must keep the
# total.  Bounded: a few seconds each.
set -u
bin=${SHARDLITE:?}
command -v pgbench >/dev/null && command -v psql >/dev/null || { echo "1..0 # SKIP pgbench/psql not installed"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir pgbench
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=bench PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }

t "cluster starts" '"$bin" cluster start --dir "$dir" --shards 4 --port $port >/dev/null'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)" >/dev/null
for b in $(seq 0 9); do
  vals=$(seq $((b * 100 + 1)) $((b * 100 + 100)) | sed 's/.*/(&, 1000)/' | paste -sd,)
  q "INSERT INTO accounts VALUES $vals" >/dev/null
done
t "1,000 accounts loaded" '[ "$(q "SELECT count(*) FROM accounts")" = 1000 ]'

cat >"$dir/select.sql" <<'SQL'
\set aid random(1, 1000)
SELECT balance FROM accounts WHERE id = :aid;
SQL
for mode in simple extended prepared; do
  out=$(pgbench -n -M $mode -c 4 -j 2 -T 2 -f "$dir/select.sql" 2>&1)
  t "pgbench -M $mode point selects run without errors" 'echo "$out" | grep -q "number of failed transactions: 0" && echo "$out" | grep -q "^tps"'
done

cat >"$dir/transfer.sql" <<'SQL'
\set src random(1, 1000)
\set dst random(1, 1000)
BEGIN;
UPDATE accounts SET balance = balance - 1 WHERE id = :src;
UPDATE accounts SET balance = balance + 1 WHERE id = :dst;
END;
SQL
for mode in simple prepared; do
  # -t, not -T: with -T a transaction still being retried when time runs
  # out is counted as failed
  out=$(pgbench -n -M $mode -c 8 -j 2 -t 300 --max-tries=100 --failures-detailed --verbose-errors -f "$dir/transfer.sql" 2>&1)
  t "pgbench -M $mode transfers: no failures beyond retried 40001/40P01" 'echo "$out" | grep -q "number of failed transactions: 0"' || true
  if ! echo "$out" | grep -q "number of failed transactions: 0"; then
    echo "$out" | grep -v "will be retried\|repeats the transaction" | sed 's/^/# /' | head -40
  fi
  done_tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  t "transfers actually ran ($done_tx)" '[ "${done_tx:-0}" -gt 0 ]'
done
t "the total is unchanged after concurrent transfers" '[ "$(q "SELECT sum(balance) FROM accounts")" = 1000000 ]'
# pgbench's built-in tpcb-like script on tables made without COPY (scale 1).
# pgbench_history has no key in pgbench; here it is a reference table with
# an INTEGER PRIMARY KEY filled in by each shard.
q "CREATE TABLE pgbench_branches (bid INT PRIMARY KEY, bbalance INT NOT NULL, filler CHAR(88)) PARTITION BY HASH (bid)" >/dev/null
q "CREATE TABLE pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT NOT NULL, filler CHAR(84)) PARTITION BY HASH (tid)" >/dev/null
q "CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT NOT NULL, filler CHAR(84)) PARTITION BY HASH (aid)" >/dev/null
q "CREATE TABLE pgbench_history (hid INTEGER PRIMARY KEY, tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22))" >/dev/null
q "INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0)" >/dev/null
q "INSERT INTO pgbench_tellers (tid, bid, tbalance) VALUES $(seq 1 10 | sed 's/.*/(&, 1, 0)/' | paste -sd,)" >/dev/null
for b in $(seq 0 99); do
  printf 'INSERT INTO pgbench_accounts (aid, bid, abalance) VALUES '
  seq $((b * 1000 + 1)) $((b * 1000 + 1000)) | sed 's/.*/(&, 1, 0)/' | paste -sd, | tr -d '\n'
  echo ';'
done >"$dir/accounts.sql"
psql -X -q -v ON_ERROR_STOP=1 -f "$dir/accounts.sql" >/dev/null 2>&1
t "tpcb-like tables loaded without COPY (100,000 accounts)" '[ "$(q "SELECT count(*) FROM pgbench_accounts")" = 100000 ]'
out=$(pgbench -n -b tpcb-like -c 4 -j 2 -t 150 --max-tries=100 2>&1)
t "pgbench -b tpcb-like runs without failures" 'echo "$out" | grep -q "number of failed transactions: 0" && echo "$out" | grep -q "actually processed: 600"'
echo "$out" | grep -q "number of failed transactions: 0" || echo "$out" | sed 's/^/# /' | head -20
sa=$(q "SELECT sum(abalance) FROM pgbench_accounts"); st=$(q "SELECT sum(tbalance) FROM pgbench_tellers")
sb=$(q "SELECT sum(bbalance) FROM pgbench_branches"); sh=$(q "SELECT sum(delta) FROM pgbench_history")
t "tpcb-like: sum(abalance) = sum(tbalance) = sum(bbalance) = sum(delta) ($sa $st $sb $sh)" '[ -n "$sa" ] && [ "$sa" = "$st" ] && [ "$st" = "$sb" ] && [ "$sb" = "$sh" ]'
t "tpcb-like: one history row per transaction" '[ "$(q "SELECT count(*) FROM pgbench_history")" = 600 ]'

# the coordinator retires finished decisions on its next sweep (every second)
for _ in $(seq 50); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.1; done
t "no transaction left in doubt" '[ -z "$(q "SHOW TRANSACTIONS")" ]'
# a clean stop lets LeakSanitizer speak in sanitizer builds
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the router's and shards' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
