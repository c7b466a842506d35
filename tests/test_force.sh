#!/usr/bin/env bash
# The decision log is lost while a cross-shard transfer is prepared on both
# shards: the router must not presume abort (the transfer might have
# committed elsewhere); it lists the transaction as in doubt until an
# operator resolves it with COMMIT PREPARED 'txn' / ROLLBACK PREPARED 'txn'.
# The router's decision log decides here (SHARDLITE_2PC_DECIDER=router):
# with the last writer deciding, nothing is ever in doubt this way
# (tests/test_decider.sh).
set -u
export SHARDLITE_2PC_DECIDER=router
bin=${SHARDLITE:?}
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir force
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=op PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
state() { psql -X -q -A -t -v VERBOSITY=verbose -c "$1" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1; }
bal() { "$bin" shard-query 127.0.0.1:$((port + 1 + $1)) "SELECT balance FROM accounts WHERE id = $2"; }

t "cluster starts" '"$bin" cluster start --dir "$dir" --shards 2 --port $port >/dev/null'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)" >/dev/null
q "INSERT INTO accounts VALUES $(seq 1 20 | sed 's/.*/(&, 100)/' | paste -sd,)" >/dev/null
# the INSERT is acknowledged once its decision is durable; the shards read
# directly below may still be in phase two
cnt() { "$bin" shard-query 127.0.0.1:$((port + 1 + $1)) "SELECT count(*) FROM accounts" 2>/dev/null || echo 0; }
for _ in $(seq 100); do [ $(( $(cnt 0) + $(cnt 1) )) = 20 ] && break; sleep 0.05; done
a=""; b=""
for id in $(seq 1 20); do
  if [ "$(bal 0 $id)" = 100 ]; then [ -z "$a" ] && a=$id; else [ -z "$b" ] && b=$id; fi
done
t "accounts $a (shard 0) and $b (shard 1)" '[ -n "$a" ] && [ -n "$b" ] && [ "$(bal 1 $b)" = 100 ]'

# the router dies after both participants prepared, before any decision
kill -9 "$(cat "$dir/router.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=coord-after-prepare "$bin" cluster start --dir "$dir" >/dev/null 2>&1
psql -X -q -c "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = $a; UPDATE accounts SET balance = balance + 10 WHERE id = $b; COMMIT" >/dev/null 2>&1
sleep 0.3
t "the router crashed at coord-after-prepare" 'grep -q "failpoint coord-after-prepare: crashing" "$dir/router.log"'
t "both shards hold the transfer prepared" '"$status" 127.0.0.1:$((port + 1)) | grep -q prepared && "$status" 127.0.0.1:$((port + 2)) | grep -q prepared'
txn=$("$status" 127.0.0.1:$((port + 1)) | awk '$2 == "prepared" {print $1; exit}')

# the decision log is lost
rm -f "$dir/router/decisions.log"
t "the router restarts without its decision log" '"$bin" cluster start --dir "$dir" >/dev/null 2>&1'
t "it says so in its log" 'grep -q "decision log .* is missing" "$dir/router.log"'
sleep 2.5
held() { "$status" 127.0.0.1:$((port + 1 + $1)) | awk -v t="$txn" '$1 == t && $2 == "prepared"' | grep -q .; }
t "nothing is presumed aborted: still prepared on both shards after 2.5 s" 'held 0 && held 1'
t "SHOW TRANSACTIONS lists it as in doubt, decision log lost, on shards 0 and 1" 'q "SHOW TRANSACTIONS" | grep -q "^$txn|in-doubt: decision log lost|0,1|"'
t "other rows stay usable" '[ "$(q "UPDATE accounts SET balance = balance WHERE id NOT IN ($a, $b)")" = "" ]'
t "ROLLBACK PREPARED of an unknown id is 42704" '[ "$(state "ROLLBACK PREPARED '"'"'12345'"'"'")" = 42704 ]'
t "COMMIT PREPARED inside a transaction block is 25001" '[ "$(psql -X -q -A -t -v VERBOSITY=verbose -c "BEGIN" -c "COMMIT PREPARED '"'"'$txn'"'"'" 2>&1 | sed -n "s/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p")" = 25001 ]'
t "a malformed id is 22P02" '[ "$(state "COMMIT PREPARED '"'"'abc'"'"'")" = 22P02 ]'

# the operator looked at the shards and decides: commit
out=$(psql -X -q -A -t -c "COMMIT PREPARED '$txn'" 2>&1)
t "COMMIT PREPARED '$txn' commits it on both shards" 'echo "$out" | grep -q "2 shard(s)" && [ "$(bal 0 $a)" = 90 ] && [ "$(bal 1 $b)" = 110 ]'
t "the total is unchanged" '[ "$(q "SELECT sum(balance) FROM accounts")" = 2000 ]'
for _ in $(seq 50); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.1; done
t "nothing left in doubt" '[ -z "$(q "SHOW TRANSACTIONS")" ]'
t "automatic recovery resumes once nothing is in doubt" 'grep -q "automatic recovery resumes" "$dir/router.log"'
t "transactions work again" 'q "BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = $a; UPDATE accounts SET balance = balance - 1 WHERE id = $b; COMMIT" >/dev/null && [ "$(q "SELECT sum(balance) FROM accounts")" = 2000 ]'
# a participant that never votes: shard 1 sleeps 12 s in PREPARE; the
# coordinator gives up after 10 s and rolls back everywhere
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=shard-before-prepare=delay:12000 "$bin" cluster start --dir "$dir" >/dev/null 2>&1
before=$(q "SELECT sum(balance) FROM accounts")
t0=$(date +%s%N)
hung=$(psql -X -q -A -t -v VERBOSITY=verbose -c "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = $a; UPDATE accounts SET balance = balance + 5 WHERE id = $b; COMMIT" 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
t "a PREPARE that never answers is a NO after the timeout (40001 in ${ms} ms)" 'echo "$hung" | grep -q "40001.*did not answer PREPARE" && [ $ms -ge 9000 ] && [ $ms -lt 12000 ]'
sleep 3   # the late vote arrives, then the ROLLBACK PREPARED behind it
for _ in $(seq 50); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.1; done
t "the late YES changed nothing: rolled back on both shards" '[ "$(bal 0 $a)" = 91 ] && [ "$(bal 1 $b)" = 109 ] && [ "$(q "SELECT sum(balance) FROM accounts")" = "$before" ]'
t "nothing in doubt afterwards" '[ -z "$(q "SHOW TRANSACTIONS")" ] && ! "$status" 127.0.0.1:$((port + 2)) | grep -q prepared'
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the servers' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
