#!/usr/bin/env bash
# The router end to end: a real 4-shard cluster on 127.0.0.1, driven with
# psql.  Data spread, routing, errors with their SQLSTATEs, sessions that
# survive errors, transactions across shards.
set -u
bin=${SHARDLITE:?}
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir router
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
sq="'"

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=tester PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# the SQLSTATE of the first error a statement gives
state() { psql -X -q -A -t -v VERBOSITY=verbose -c "$1" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1; }

t "cluster with a router starts" '"$bin" cluster start --dir "$dir" --shards 4 --port $port >/dev/null'
t "psql connects: SELECT 1" '[ "$(q "SELECT 1")" = 1 ]'
t "server_version is reported" 'psql -X -A -t -c "SHOW server_version" | grep -q "^15"'
t "CREATE TABLE partitioned by hash" 'q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0), owner TEXT) PARTITION BY HASH (id)" >/dev/null'

# 10,000 rows in 100 multi-row INSERTs
sqlf="$dir/load.sql"
for b in $(seq 0 99); do
  printf 'INSERT INTO accounts (id, balance, owner) VALUES ' >>"$sqlf"
  for i in $(seq 1 100); do
    id=$((b * 100 + i)); sep=','; [ "$i" = 100 ] && sep=';'
    printf "(%d, 1000, 'owner %d')%s" "$id" "$id" "$sep" >>"$sqlf"
  done
  printf '\n' >>"$sqlf"
done
t "10,000 rows loaded with multi-row INSERTs" 'psql -X -q -v ON_ERROR_STOP=1 -f "$sqlf" >/dev/null 2>&1'
t "count(*) is 10000" '[ "$(q "SELECT count(*) FROM accounts")" = 10000 ]'
t "sum(balance) is 10,000,000" '[ "$(q "SELECT sum(balance) FROM accounts")" = 10000000 ]'
spread_ok=0; counts=""
for i in 0 1 2 3; do
  c=$("$bin" shard-query 127.0.0.1:$((port + 1 + i)) "SELECT count(*) FROM accounts" 2>/dev/null)
  counts="$counts $c"
  [ -n "$c" ] && [ "$c" -gt 2000 ] && [ "$c" -lt 3000 ] || spread_ok=1
done
ok $spread_ok "the rows are spread over all 4 shards:$counts"
t "point lookup by key" '[ "$(q "SELECT owner FROM accounts WHERE id = 4242")" = "owner 4242" ]'
t "EXPLAIN of a point lookup names one shard" '[ "$(q "EXPLAIN SELECT * FROM accounts WHERE id = 4242" | grep -ci shard)" -ge 1 ] && [ "$(q "EXPLAIN SELECT * FROM accounts WHERE id = 4242" | grep -c "^Shard")" = 1 ]'
t "ORDER BY and LIMIT merge across shards" '[ "$(q "SELECT id FROM accounts ORDER BY id DESC LIMIT 3" | tr "\n" " ")" = "10000 9999 9998 " ]'
t "GROUP BY with HAVING across shards" '[ "$(q "SELECT balance, count(*) FROM accounts GROUP BY balance HAVING count(*) > 5")" = "1000|10000" ]'
t "AVG across shards" '[ "$(q "SELECT avg(balance)::bigint FROM accounts" 2>/dev/null || q "SELECT avg(balance) FROM accounts")" != "" ]'
t "IN list on the key" '[ "$(q "SELECT count(*) FROM accounts WHERE id IN (1, 2, 3, 99999)")" = 3 ]'
t "SHOW SHARDS lists 4 shards" '[ "$(q "SHOW SHARDS" | wc -l)" = 4 ]'
t "SHOW TABLES lists accounts" 'q "SHOW TABLES" | grep -q "^accounts|hash|id"'

# transactions
t "cross-shard transfer in BEGIN ... COMMIT" 'q "BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1; UPDATE accounts SET balance = balance + 100 WHERE id = 2; COMMIT" >/dev/null'
t "the transfer applied on both shards" '[ "$(q "SELECT balance FROM accounts WHERE id = 1")" = 900 ] && [ "$(q "SELECT balance FROM accounts WHERE id = 2")" = 1100 ]'
t "total unchanged after the transfer" '[ "$(q "SELECT sum(balance) FROM accounts")" = 10000000 ]'
t "ROLLBACK undoes a transaction" 'q "BEGIN; UPDATE accounts SET balance = 0 WHERE id = 3; ROLLBACK" >/dev/null && [ "$(q "SELECT balance FROM accounts WHERE id = 3")" = 1000 ]'
t "an autocommit UPDATE across all shards is atomic and complete" 'q "UPDATE accounts SET owner = owner || ${sq}!${sq} WHERE balance >= 0" >/dev/null && [ "$(q "SELECT count(*) FROM accounts WHERE owner LIKE ${sq}%!${sq}")" = 10000 ]'

# read-your-writes: a session's next statement sees its last distributed
# commit even though phase two runs after COMMIT returned
q "CREATE TABLE items (id BIGINT PRIMARY KEY, qty INT NOT NULL) PARTITION BY HASH (id)" >/dev/null
for i in $(seq 30); do echo "DELETE FROM items;"; echo "INSERT INTO items VALUES (1, 1), (2, 1), (3, 1), (4, 1), (5, 1);"; echo "UPDATE items SET qty = qty + 1 WHERE id >= 2;"; done >"$dir/ryw.sql"
ryw=$(psql -X -q -A -t -f "$dir/ryw.sql" 2>&1)
t "a session always sees its own distributed commits (30 x DELETE, INSERT, UPDATE)" '[ -z "$ryw" ] && [ "$(q "SELECT sum(qty) FROM items")" = 9 ]'

# errors keep the session usable
t "syntax error is 42601" '[ "$(state "SELEC 1")" = 42601 ]'
t "syntax error reports a position" 'psql -X -c "SELECT 1 FROM accounts WHER id = 1" 2>&1 | grep -q "^LINE 1"'
t "unknown table is 42P01" '[ "$(state "SELECT * FROM nope")" = 42P01 ]'
t "unknown column is 42703" '[ "$(state "SELECT nope FROM accounts")" = 42703 ]'
t "a join is 0A000" '[ "$(state "SELECT * FROM accounts a JOIN accounts b ON a.id = b.id")" = 0A000 ]'
t "a subquery is 0A000" '[ "$(state "SELECT * FROM accounts WHERE id IN (SELECT id FROM accounts)")" = 0A000 ]'
t "duplicate key is 23505" '[ "$(state "INSERT INTO accounts (id, balance) VALUES (5, 1)")" = 23505 ]'
t "CHECK violation is 23514" '[ "$(state "UPDATE accounts SET balance = -1 WHERE id = 5")" = 23514 ]'
t "NOT NULL violation is 23502" '[ "$(state "INSERT INTO accounts (id, balance) VALUES (20001, NULL)")" = 23502 ]'
t "moving a row to another shard is 0A000" '[ "$(state "UPDATE accounts SET id = 7 WHERE id = 6")" = 0A000 ]'
aborted=$(psql -X -q -A -t -v VERBOSITY=verbose 2>&1 <<'SQL'
BEGIN;
SELECT * FROM nope;
SELECT 1;
ROLLBACK;
SELECT 42;
SQL
)
t "inside a failed transaction: 25P02 until ROLLBACK, then usable" 'echo "$aborted" | grep -q "25P02" && echo "$aborted" | grep -q "^42$"'
t "pg_catalog queries get a clean error, connection kept" 'psql -X -A -t -c "SELECT relname FROM pg_catalog.pg_class" -c "SELECT 7" 2>&1 | grep -q "^7$"'

# range partitioning
t "CREATE TABLE partitioned by range" 'q "CREATE TABLE events (id BIGINT PRIMARY KEY, v TEXT) PARTITION BY RANGE (id) SPLIT AT (1000, 2000, 3000)" >/dev/null'
t "range rows land by range" 'q "INSERT INTO events VALUES (5, ${sq}a${sq}), (1500, ${sq}b${sq}), (2500, ${sq}c${sq}), (3500, ${sq}d${sq})" >/dev/null && [ "$(q "SELECT count(*) FROM events WHERE id BETWEEN 1000 AND 2999")" = 2 ]'
t "a range predicate reaches only overlapping shards" '[ "$(q "EXPLAIN SELECT * FROM events WHERE id >= 1000 AND id < 2000" | grep -c "^Shard")" = 1 ]'

# reference table: copied to every shard
# (read on the shards directly: the INSERT is acknowledged once its commit
# decision is durable, phase two may still be on its way)
on_all_shards() { for i in 0 1 2 3; do [ "$("$bin" shard-query 127.0.0.1:$((port + 1 + i)) "SELECT name FROM branches")" = main ] || return 1; done; }
t "a reference table's insert reaches every shard" 'q "CREATE TABLE branches (id INT PRIMARY KEY, name TEXT)" >/dev/null && q "INSERT INTO branches VALUES (1, ${sq}main${sq})" >/dev/null && for _ in $(seq 40); do on_all_shards && break; sleep 0.05; done && on_all_shards'
t "DROP TABLE" 'q "DROP TABLE events" >/dev/null && [ "$(state "SELECT * FROM events")" = 42P01 ]'

# the catalog survives a router restart
rpid=$(cat "$dir/router.pid"); kill -9 "$rpid"; sleep 0.3
t "router restarts with its catalog" '"$bin" cluster start --dir "$dir" >/dev/null && [ "$(q "SELECT count(*) FROM accounts")" = 10000 ]'

# a clean stop lets LeakSanitizer speak in sanitizer builds
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the router's and shards' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
