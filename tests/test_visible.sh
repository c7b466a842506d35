#!/usr/bin/env bash
# A commit acknowledged to one client is seen by every statement that starts
# after it, in any session, although the client hears COMMIT before phase
# two.  Phase two is made slow on purpose: the router commits one
# participant at a time (any failpoint armed in it does that) and shard 0
# sleeps 1.5 s before each COMMIT PREPARED, so for that long a transaction
# acknowledged to its client is still prepared, not yet applied, on shard 1.
# Statements that reach shard 1 meanwhile must wait for it: an UPDATE that
# did not would find no row and take no lock, and a transfer would commit
# half of itself (tests/test_audit once saw a total of 200011 this way).
set -u
bin=${SHARDLITE:?}
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir visible
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=vis PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# an id that the router places on shard $1, above $2
id_on() {
	local id=$2
	while :; do
		id=$((id + 1))
		q "EXPLAIN SELECT * FROM accounts WHERE id = $id" | grep -q "^Shard $1 " && { echo $id; return; }
	done
}

t "cluster starts, phase two one participant at a time" \
  'SHARDLITE_FAILPOINTS=coord-between-commits=delay:0 "$bin" cluster start --dir "$dir" --shards 2 --port $port >/dev/null 2>&1'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)" >/dev/null
kill -9 "$(cat "$dir/shard-0.pid")"; sleep 0.2
t "shard 0 restarts, slow to COMMIT PREPARED" \
  'SHARDLITE_FAILPOINTS=shard-before-commit-prepared=delay:1500 "$bin" cluster start --dir "$dir" >/dev/null 2>&1 && grep -q "failpoints armed: shard-before" "$dir/shard-0.log"'
a=$(id_on 0 0); b=$(id_on 1 0); c=$(id_on 0 "$a"); d=$(id_on 1 "$b")

t "accounts $a (shard 0) and $b (shard 1) inserted in one transaction" \
  '[ "$(psql -X -A -t -c "INSERT INTO accounts VALUES ($a, 1000), ($b, 1000)" 2>&1)" = "INSERT 0 2" ]'
out=$(psql -X -A -t -c "BEGIN; UPDATE accounts SET balance = balance - 11 WHERE id = $b; UPDATE accounts SET balance = balance + 11 WHERE id = $a; COMMIT" 2>&1)
t "a transfer right after it finds both rows" '[ "$(echo "$out" | grep -c "^UPDATE 1$")" = 2 ] && echo "$out" | grep -q "^COMMIT$"'
t "the total is exact" '[ "$(q "SELECT sum(balance) FROM accounts")" = 2000 ]'

t "accounts $c (shard 0) and $d (shard 1) inserted in one transaction" \
  '[ "$(psql -X -A -t -c "INSERT INTO accounts VALUES ($c, 500), ($d, 500)" 2>&1)" = "INSERT 0 2" ]'
t "a read of one shard right after it sees the row" '[ "$(q "SELECT balance FROM accounts WHERE id = $d")" = 500 ]'
t "an autocommit UPDATE right after a transfer sees the transfer" \
  'q "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = $c; UPDATE accounts SET balance = balance + 5 WHERE id = $d; COMMIT" >/dev/null && [ "$(q "UPDATE accounts SET balance = balance * 2 WHERE id = $d")" = "" ] && [ "$(q "SELECT balance FROM accounts WHERE id = $d")" = 1010 ]'
for _ in $(seq 50); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.1; done
t "nothing in doubt afterwards" '[ -z "$(q "SHOW TRANSACTIONS")" ]'
# A read at a consistent cut holds newer commits back only until every
# shard has taken its snapshot (wire.fbs: Started), not until its rows
# arrive: shard 0 now sleeps 4 s after taking a read's snapshot, and a
# transfer (and a statement that must see it applied) run meanwhile.
kill -9 "$(cat "$dir/shard-0.pid")"; sleep 0.2
t "shard 0 restarts, slow to run a read once its snapshot is taken" \
  'SHARDLITE_FAILPOINTS=shard-read-after-snapshot=delay:4000 "$bin" cluster start --dir "$dir" >/dev/null 2>&1 && grep -q "failpoints armed: shard-read-after-snapshot" "$dir/shard-0.log"'
# enough rows that a full scan leaves the shard's loop thread (its step
# budget) for a reader thread, where snapshots are announced
q "INSERT INTO accounts VALUES $(seq 300001 304000 | sed 's/.*/(&, 1)/' | paste -sd,)" >/dev/null
e=$(id_on 0 400000); f=$(id_on 1 400000)
q "INSERT INTO accounts VALUES ($e, 100), ($f, 100)" >/dev/null
rm -f "$dir/read.out" "$dir/read.end"
( psql -X -q -A -t -c "SELECT id, balance FROM accounts WHERE id + 0 IN ($e, $f) ORDER BY id" >"$dir/read.out" 2>&1
  touch "$dir/read.end" ) &
rpid=$!
sleep 1
out=$(psql -X -A -t -c "BEGIN; UPDATE accounts SET balance = balance - 7 WHERE id = $e; UPDATE accounts SET balance = balance + 7 WHERE id = $f; COMMIT" \
      -c "UPDATE accounts SET balance = balance + 0 WHERE id = $f" 2>&1)
t "a transfer and a statement that needs it applied finish while the slow read still runs" \
  'echo "$out" | grep -q "^COMMIT$" && [ "$(echo "$out" | grep -c "^UPDATE 1$")" = 3 ] && [ ! -e "$dir/read.end" ]'
wait $rpid
t "the read saw none of the transfer: its snapshot came first ($(tr '\n' ' ' <"$dir/read.out"))" \
  '[ "$(tr "\n" " " <"$dir/read.out")" = "$e|100 $f|100 " ]'
t "afterwards the transfer is there, whole" '[ "$(q "SELECT balance FROM accounts WHERE id = $e")" = 93 ] && [ "$(q "SELECT balance FROM accounts WHERE id = $f")" = 107 ]'
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the servers' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
