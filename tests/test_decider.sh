#!/usr/bin/env bash
# The last writer decides (SHARDLITE_2PC_DECIDER=shard, the default;
# docs/transactions.md): its one-phase commit, with a decision record in its
# own database, is the commit point; every other participant is prepared
# naming it.  End to end, on a 2-shard cluster where shard 1 decides:
#  - transfers leave no decision records behind (the router forgets them);
#  - a router crash after the decision, with its decision log deleted as
#    well, still ends in the commit on both shards: recovery asks shard 1;
#  - while shard 1 is slow to answer, SHOW TRANSACTIONS lists the prepared
#    half as asking shard 1, and an operator's ROLLBACK PREPARED of it is
#    refused (shard 1 committed it); the commit then completes;
#  - shard 1 crashing after its commit was durable and coming back at once:
#    the router asks it again (Resolve) and the client sees COMMIT;
#  - shard 1 taking 12 s to commit: the client gets 08007 after 10 s, the
#    transaction still commits on both shards;
#  - a transaction that waited for a row lock on shard 0 has shard 0 decide
#    (not the last writer, shard 1), so the row others want is released
#    at the decision.
set -u
export LC_ALL=C SHARDLITE_2PC_DECIDER=shard
bin=${SHARDLITE:?}
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
command -v timeout >/dev/null || { echo "1..0 # SKIP timeout not installed"; exit 0; }
[ -x "$status" ] || { echo "1..0 # SKIP $status not built (make check builds it)"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir decider
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=op PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 20 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
state() { timeout 20 psql -X -q -A -t -v VERBOSITY=verbose -c "$1" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1; }
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
bal() { sq "$1" "SELECT balance FROM accounts WHERE id = $2" 2>/dev/null; }
# rows of state $2 in shard $1's Status
rows() { timeout 10 "$status" "127.0.0.1:$((port + 1 + $1))" 2>/dev/null | awk -F'\t' -v s="$2" '$2 == s { c++ } END { print c + 0 }'; }
# cluster start restarts whatever is down; retried (see tests/test_crash.sh)
start() {
	local i
	for i in 1 2 3; do
		"$bin" cluster start --dir "$dir" "$@" >/dev/null 2>>"$dir/start.err" && return 0
		sleep 0.2
	done
	return 1
}
transfer() {
	printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "$1" "$2" |
		timeout 20 psql -X -A -t -v ON_ERROR_STOP=1 -f - 2>&1
}

t "2-shard cluster starts" 'start --shards 2 --port $port'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)" >/dev/null
q "INSERT INTO accounts VALUES $(seq 1 40 | sed 's/.*/(&, 1000)/' | paste -sd,)" >/dev/null
poll 5 '[ $(( $(sq 0 "SELECT count(*) FROM accounts") + $(sq 1 "SELECT count(*) FROM accounts") )) = 40 ]'
a=(); b=()
for id in $(seq 1 40); do if [ -n "$(bal 0 $id)" ]; then a+=("$id"); else b+=("$id"); fi; done
t "accounts on both shards (${#a[@]} + ${#b[@]})" '[ "${#a[@]}" -ge 6 ] && [ "${#b[@]}" -ge 6 ]'

# ---- many transfers: no decision record stays ----------------------------------
for i in $(seq 1 30); do
	printf 'BEGIN;\nUPDATE accounts SET balance = balance - 1 WHERE id = %s;\nUPDATE accounts SET balance = balance + 1 WHERE id = %s;\nCOMMIT;\n' "${a[0]}" "${b[0]}"
done > "$dir/many.sql"
t "30 cross-shard transfers commit" '[ "$(timeout 30 psql -X -A -t -v ON_ERROR_STOP=1 -f "$dir/many.sql" 2>&1 | grep -c "^COMMIT$")" = 30 ]'
t "... all applied" '[ "$(bal 0 "${a[0]}")" = 970 ] && [ "$(bal 1 "${b[0]}")" = 1030 ]'
t "... and the deciding shard drops their decision records within 3 s" 'poll 3 "[ \"\$(rows 1 decided)\" = 0 ]"'
t "... none was ever prepared on the deciding shard" '[ "$(rows 1 prepared)" = 0 ] && [ "$(rows 0 prepared)" = 0 ]'
ncommits=$(q "SHOW commit_latency_commits"); p50=$(q "SHOW commit_latency_p50_ms"); p99=$(q "SHOW commit_latency_p99_ms")
t "SHOW commit_latency_*: $ncommits commits, p50 $p50 ms, p99 $p99 ms" \
  '[ "$ncommits" -ge 30 ] && awk -v a="$p50" -v b="$p99" "BEGIN { exit !(a > 0 && b >= a && b < 10000) }"'

# ---- a router crash after the decision, and its decision log lost ---------------
kill -9 "$(cat "$dir/router.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=coord-after-decide start
out=$(transfer "${a[1]}" "${b[1]}")
t "the router crashed after shard 1 decided (psql: $(echo "$out" | tail -1))" \
  'poll 5 "grep -q \"failpoint coord-after-decide: crashing\" \"$dir/router.log\""'
t "shard 1 committed its half, shard 0 holds its half prepared" \
  '[ "$(bal 1 "${b[1]}")" = 1010 ] && [ "$(bal 0 "${a[1]}")" = 1000 ] && [ "$(rows 0 prepared)" = 1 ] && [ "$(rows 1 decided)" = 1 ]'
rm -f "$dir/router/decisions.log"
t "the router restarts without its decision log" 'start'
t "recovery asks shard 1 and commits shard 0's half" 'poll 5 "[ \"\$(bal 0 \"${a[1]}\")\" = 990 ] && [ \"\$(rows 0 prepared)\" = 0 ]"'
t "nothing is left in doubt" 'poll 5 "[ -z \"\$(q \"SHOW TRANSACTIONS\")\" ]"'
t "... and the decision record is dropped" 'poll 5 "[ \"\$(rows 1 decided)\" = 0 ]"'

# ---- the decider slow to answer: listed, and not rolled back by an operator ------
kill -9 "$(cat "$dir/router.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=coord-after-decide start
out=$(transfer "${a[2]}" "${b[2]}")
poll 5 '! kill -0 "$(cat "$dir/router.pid")" 2>/dev/null'
txn=$(timeout 10 "$status" "127.0.0.1:$((port + 1))" | awk -F'\t' '$2 == "prepared" { print $1; exit }')
t "the router crashed again after the decision (txn $txn prepared on shard 0)" '[ -n "$txn" ]'
# shard 1 stalls 2 s in every Resolve; the router comes back
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=shard-before-resolve=delay:2000 start
t "SHOW TRANSACTIONS lists it as asking shard 1, prepared on shard 0" \
  'poll 3 "q \"SHOW TRANSACTIONS\" | grep -q \"^$txn|in-doubt: asking shard 1|0|\""'
refused=$(state "ROLLBACK PREPARED '$txn'")
t "an operator's ROLLBACK PREPARED of it is refused with 55000 (got $refused)" '[ "$refused" = 55000 ]'
t "the commit completes on both shards" 'poll 10 "[ \"\$(bal 0 \"${a[2]}\")\" = 990 ] && [ \"\$(rows 0 prepared)\" = 0 ]" && [ "$(bal 1 "${b[2]}")" = 1010 ]'
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
t "shard 1 restarts without its failpoint" 'start'
t "nothing is left in doubt" 'poll 5 "[ -z \"\$(q \"SHOW TRANSACTIONS\")\" ] && [ \"\$(rows 1 decided)\" = 0 ]"'
t "the total is unchanged" '[ "$(q "SELECT sum(balance) FROM accounts")" = 40000 ]'
t "transfers work again" '[ "$(transfer "${a[3]}" "${b[3]}" | tail -1)" = COMMIT ] && [ "$(q "SELECT sum(balance) FROM accounts")" = 40000 ]'
# ---- the decider's answer lost, the decider back within seconds ------------------
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=shard-after-decide start
transfer "${a[4]}" "${b[4]}" >"$dir/lost.out" 2>&1 &
job=$!
t "shard 1 crashed after its deciding commit was durable" \
  'poll 5 "grep -q \"failpoint shard-after-decide: crashing\" \"$dir/shard-1.log\""'
t "it restarts without the failpoint" 'start'
wait "$job"
t "the router asked it again and the client saw COMMIT ($(tail -1 "$dir/lost.out"))" '[ "$(tail -1 "$dir/lost.out")" = COMMIT ]'
t "... applied on both shards" 'poll 5 "[ \"\$(bal 0 \"${a[4]}\")\" = 990 ] && [ \"\$(rows 0 prepared)\" = 0 ]" && [ "$(bal 1 "${b[4]}")" = 1010 ]'

# ---- a decider that takes 12 s to commit: 08007 after 10 s, then the commit -------
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=shard-before-decide=delay:12000 start
t0=$SECONDS
slow=$(printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "${a[5]}" "${b[5]}" |
	timeout 30 psql -X -A -t -v VERBOSITY=verbose -f - 2>&1)
t "a decider that does not answer: 08007 after about 10 s ($(( SECONDS - t0 )) s: $(echo "$slow" | tail -1))" \
  'echo "$slow" | grep -q "08007" && [ $(( SECONDS - t0 )) -ge 9 ] && [ $(( SECONDS - t0 )) -le 12 ]'
t "... and once it commits, the transfer completes on both shards" \
  'poll 8 "[ \"\$(bal 0 \"${a[5]}\")\" = 990 ] && [ \"\$(rows 0 prepared)\" = 0 ]" && [ "$(bal 1 "${b[5]}")" = 1010 ]'
kill -9 "$(cat "$dir/shard-1.pid")"; sleep 0.2
t "shard 1 restarts without its failpoint" 'start'
t "nothing is left in doubt" 'poll 5 "[ -z \"\$(q \"SHOW TRANSACTIONS\")\" ] && [ \"\$(rows 1 decided)\" = 0 ]"'
t "the total is unchanged" '[ "$(q "SELECT sum(balance) FROM accounts")" = 40000 ]'
# ---- the shard where the transaction waited for a row decides -------------------
kill -9 "$(cat "$dir/router.pid")"; sleep 0.2
SHARDLITE_FAILPOINTS=coord-after-decide start
crashes=$(grep -c "failpoint coord-after-decide: crashing" "$dir/router.log")
# an older transaction holds a[6] on shard 0 for a second (a transfer
# from a[6] to a[7], both on shard 0)
printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\n\\! sleep 1\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "${a[6]}" "${a[7]}" |
	timeout 20 psql -X -A -t -f - >"$dir/holder.out" 2>&1 &
holder=$!
sleep 0.3
# a younger one waits for it there, then writes on shard 1 too
out=$(transfer "${a[6]}" "${b[6]}")
wait "$holder"
t "the holder committed ($(tail -1 "$dir/holder.out"))" 'grep -q "^COMMIT$" "$dir/holder.out"'
t "the waiting transfer reached its decision (psql: $(echo "$out" | tail -1))" \
  'poll 5 "[ \$(grep -c \"failpoint coord-after-decide: crashing\" \"$dir/router.log\") -gt $crashes ]"'
t "shard 0, where it waited, decided; shard 1 holds its half prepared" \
  '[ "$(rows 0 decided)" = 1 ] && [ "$(rows 1 prepared)" = 1 ] && [ "$(rows 0 prepared)" = 0 ]'
t "the router restarts" 'start'
t "recovery asks shard 0 and commits shard 1's half" \
  'poll 5 "[ \"\$(bal 1 \"${b[6]}\")\" = 1010 ] && [ \"\$(rows 1 prepared)\" = 0 ]" && [ "$(bal 0 "${a[6]}")" = 980 ] && [ "$(bal 0 "${a[7]}")" = 1010 ]'
t "nothing is left in doubt" 'poll 5 "[ -z \"\$(q \"SHOW TRANSACTIONS\")\" ] && [ \"\$(rows 0 decided)\" = 0 ]"'
t "the total is still unchanged" '[ "$(q "SELECT sum(balance) FROM accounts")" = 40000 ]'
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
diag "elapsed ${SECONDS} s"
echo "1..$n"
exit $failed
