#!/usr/bin/env bash
# Two-phase commit under crashes: every failpoint on the 2PC path
# (docs/failpoints.md), in the router's coordinator and in each of the two
# participant shards.  For each one: arm the failpoint in the target process
# (kill -9 it, restart it with SHARDLITE_FAILPOINTS), run a cross-shard
# transfer with psql, see the process die at the failpoint, restart it
# without, wait for recovery, then check atomicity (both shards or neither,
# read directly on the shards), durability (an acknowledged COMMIT is
# there), that nothing stays in doubt (SHOW TRANSACTIONS empty, no shard
# holds a prepared transaction: tests/shard_status), that the rows are
# writable again and that the total of balances is unchanged.
# Then blocking: participants prepared and the router down, the rows wait
# (40001 after the lock timeout) while others stay writable, and are
# released within seconds once the router is back (presumed abort).
#
# Both ways of deciding (docs/transactions.md), by $SHARDLITE_2PC_DECIDER:
#   shard (the default): the last writer's one-phase commit decides; here
#          shard 1, which is never prepared;
#   router: the router's decision log decides (tests/test_crash_router.sh).
set -u
mode=${SHARDLITE_2PC_DECIDER:-shard}
export SHARDLITE_2PC_DECIDER=$mode
export LC_ALL=C
bin=${SHARDLITE:?}
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
command -v timeout >/dev/null || { echo "1..0 # SKIP timeout not installed"; exit 0; }
[ -x "$status" ] || { echo "1..0 # SKIP $status not built (make check builds it)"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir crash
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=tester PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 20 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# one statement directly on shard I (0 or 1), bounded
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
bal() { sq "$1" "SELECT balance FROM accounts WHERE id = $2" 2>/dev/null; }
# write a row directly on shard $1 and undo it: two autocommit UPDATEs that
# really change it (an UPDATE that changes nothing records no change and so
# takes no row lock)
bump() {
	[ "$(sq "$1" "UPDATE accounts SET balance = balance + 1 WHERE id = $2" 2>&1)" = "OK 1" ] &&
		[ "$(sq "$1" "UPDATE accounts SET balance = balance - 1 WHERE id = $2" 2>&1)" = "OK 1" ]
}
# sum of balances read directly on both shards
direct_total() {
	local a b
	a=$(sq 0 "SELECT sum(balance) FROM accounts" 2>/dev/null) || return 1
	b=$(sq 1 "SELECT sum(balance) FROM accounts" 2>/dev/null) || return 1
	echo $((a + b))
}
# prepared transactions held by both shards ("?" when a shard does not answer)
nprepared() {
	local out0 out1
	out0=$(timeout 10 "$status" "127.0.0.1:$((port + 1))" 2>/dev/null) || { echo "?"; return; }
	out1=$(timeout 10 "$status" "127.0.0.1:$((port + 2))" 2>/dev/null) || { echo "?"; return; }
	printf '%s\n%s\n' "$out0" "$out1" | awk -F'\t' '$2 == "prepared" { c++ } END { print c + 0 }'
}
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }
wait_gone() { local i; for i in $(seq 1 100); do alive "$1" || return 0; sleep 0.05; done; return 1; }
pidfile() { if [ "$1" = router ]; then echo "$dir/router.pid"; else echo "$dir/shard-${1#shard}.pid"; fi; }
logfile() { if [ "$1" = router ]; then echo "$dir/router.log"; else echo "$dir/shard-${1#shard}.log"; fi; }
# `cluster start` restarts whatever is down.  It is retried: it can report a
# process that is starting as dead (see the note at the end of this file).
start() {
	local i
	for i in 1 2 3; do
		"$bin" cluster start --dir "$dir" "$@" >/dev/null 2>>"$dir/start.err" && return 0
		diag "cluster start failed (attempt $i): $(tail -1 "$dir/start.err")"
		sleep 0.2
	done
	return 1
}
# nothing in doubt: both shards answer and hold no prepared transaction, and
# the coordinator lists no transaction.  Polls up to $1 seconds.
wait_settled() {
	local out
	local deadline=$(( $(now_ms) + $1 * 1000 ))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if [ "$(nprepared)" = 0 ] && out=$(q "SHOW TRANSACTIONS") && [ -z "$out" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

t "2-shard cluster starts" 'start --shards 2 --port $port'
t "CREATE TABLE accounts partitioned by hash" 'q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)) PARTITION BY HASH (id)" >/dev/null'
vals=$(seq 1 60 | sed 's/.*/(&, 1000)/' | paste -sd, -)
t "60 accounts of 1000 loaded" 'q "INSERT INTO accounts (id, balance) VALUES $vals" >/dev/null'
total=60000
# the load committed by 2PC: its phase two may still be running (COMMIT is
# acknowledged once the decision is durable); read the shards directly only
# once nothing is in doubt
for _ in $(seq 100); do [ -z "$(q "SHOW TRANSACTIONS")" ] && break; sleep 0.05; done
read -r -a s0 <<<"$(sq 0 "SELECT id FROM accounts ORDER BY id" | tr '\n' ' ')"
read -r -a s1 <<<"$(sq 1 "SELECT id FROM accounts ORDER BY id" | tr '\n' ' ')"
t "both shards hold at least 16 accounts (${#s0[@]} + ${#s1[@]})" '[ "${#s0[@]}" -ge 16 ] && [ "${#s1[@]}" -ge 16 ] && [ $(( ${#s0[@]} + ${#s1[@]} )) = 60 ]'
t "EXPLAIN agrees: id ${s0[0]} is on shard 0, id ${s1[0]} on shard 1" \
  'q "EXPLAIN SELECT * FROM accounts WHERE id = ${s0[0]}" | grep -q "^Shard 0 " && q "EXPLAIN SELECT * FROM accounts WHERE id = ${s1[0]}" | grep -q "^Shard 1 "'
# COMMIT returns once the decision is durable, before phase two: a direct
# read on a shard sees the transfer once nothing is in doubt
t "a transfer without failpoints commits" \
  'q "BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = ${s0[0]}; UPDATE accounts SET balance = balance + 1 WHERE id = ${s1[0]}; COMMIT" >/dev/null'
t "settled after the normal transfer" 'wait_settled 5'
t "the normal transfer is on both shards" '[ "$(bal 0 ${s0[0]})" = 999 ] && [ "$(bal 1 ${s1[0]})" = 1001 ]'
crashes=0

# transfer A (shard 0) -> B (shard 1) of 10; prints psql's output, returns its status
transfer() {
	printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "$1" "$2" |
		timeout 20 psql -X -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -f - 2>&1
}

# arm FAILPOINT in TARGET (router, shard0, shard1): kill it, restart it armed
arm() {
	local pid
	pid=$(cat "$(pidfile "$2")")
	kill -9 "$pid"
	wait_gone "$pid" || return 1
	SHARDLITE_FAILPOINTS="$1" start || return 1
	alive "$(cat "$(pidfile "$2")")"
}

# scenario FAILPOINT TARGET PSQL OUTCOME PREPARED_WHILE_DOWN
#   PSQL:    ok (COMMIT must be acknowledged) | err (must not be)
#   OUTCOME: both | none (what recovery must end with)
#   PREPARED_WHILE_DOWN: prepared txns the shards must hold while the router
#            is down (router targets only; "-": not checked)
pair=1
scenario() {
	local fp=$1 target=$2 want_psql=$3 want=$4 want_prep=$5
	local a=${s0[$pair]} b=${s1[$pair]} name="$1 in $2"
	pair=$((pair + 1))
	if [ "$SECONDS" -gt 140 ]; then
		ok 1 "$name: skipped, the time budget is spent"
		return
	fi
	local a0 b0 a1 b1 out rc acked=0 pid log before after t0 tot0
	a0=$(bal 0 "$a"); b0=$(bal 1 "$b"); tot0=$(direct_total)
	log=$(logfile "$target")
	before=$(grep -c "failpoint $fp: crashing" "$log" 2>/dev/null)
	if ! arm "$fp" "$target"; then
		ok 1 "$name: restarted with the failpoint armed"
		return
	fi
	pid=$(cat "$(pidfile "$target")")
	out=$(transfer "$a" "$b"); rc=$?
	[ "$rc" = 0 ] && [ "$(echo "$out" | tail -1)" = COMMIT ] && acked=1
	wait_gone "$pid"; local gone=$?
	after=$(grep -c "failpoint $fp: crashing" "$log" 2>/dev/null)
	ok $(( gone != 0 || after != before + 1 )) "$name: the $target crashed at the failpoint"
	crashes=$((crashes + 1))
	diag "$name: psql said: $(echo "$out" | tail -1)"
	if [ "$want_psql" = any ]; then
		ok 0 "$name: psql's answer may be either (acknowledged: $acked)"
	elif [ "$want_psql" = ok ]; then
		ok $(( acked != 1 )) "$name: psql saw COMMIT acknowledged"
	else
		ok $(( acked != 0 )) "$name: psql did not see COMMIT acknowledged"
	fi
	if [ "$want_prep" != - ]; then
		local np; np=$(nprepared)
		ok $(( np != want_prep )) "$name: with the router down the shards hold $want_prep prepared transaction(s) (found $np)"
	fi
	t0=$(now_ms)
	t "$name: the $target restarts without failpoints" 'start && alive "$(cat "$(pidfile "$target")")"'
	if wait_settled 10; then
		ok 0 "$name: nothing in doubt after $(( $(now_ms) - t0 )) ms (no prepared txn on either shard, SHOW TRANSACTIONS empty)"
	else
		ok 1 "$name: nothing in doubt within 10 s: prepared $(nprepared), SHOW TRANSACTIONS: $(q "SHOW TRANSACTIONS" | tr '\n' ' ')"
	fi
	a1=$(bal 0 "$a"); b1=$(bal 1 "$b")
	local got=mixed
	if [ "$a1" = "$a0" ] && [ "$b1" = "$b0" ]; then got=none
	elif [ -n "$a0" ] && [ -n "$b0" ] && [ "$a1" = $((a0 - 10)) ] && [ "$b1" = $((b0 + 10)) ]; then got=both; fi
	ok $([ "$got" != mixed ]; echo $?) "$name: the transfer is on both shards or on neither (id $a: $a0 -> $a1, id $b: $b0 -> $b1)"
	ok $([ "$got" = "$want" ]; echo $?) "$name: the transfer is applied on $want (got $got)"
	ok $([ "$acked" = 0 ] || [ "$got" = both ]; echo $?) "$name: an acknowledged COMMIT is durable"
	ok $([ "$(direct_total)" = "$tot0" ]; echo $?) "$name: the total of balances on the shards is unchanged ($tot0)"
	t "$name: both rows are writable again" \
	  'bump 0 "$a" && bump 1 "$b"'
}

if [ "$mode" = router ]; then
#        failpoint                     target  psql  outcome  prepared while down
scenario coord-before-prepare          router  err   none     0
scenario coord-after-prepare           router  err   none     2
scenario coord-after-decision          router  err   both     2
scenario coord-between-commits         router  ok    both     1
scenario coord-after-commits           router  ok    both     0
for s in shard0 shard1; do
	scenario shard-before-prepare          $s  err   none     -
	scenario shard-after-prepare           $s  err   none     -
	scenario shard-before-commit-prepared  $s  ok    both     -
	scenario shard-after-commit-prepared   $s  ok    both     -
done
else
# shard 1 decides: only shard 0 is ever prepared.  After coord-after-decide
# shard 1 has committed and shard 0 holds the transaction prepared until the
# restarted router asks shard 1 (Resolve) and commits it.  After
# shard-after-decide the router does not know the outcome: it asks shard 1
# again until it is back (or 10 s pass: then psql hears 08007), then
# finishes the commit.
#        failpoint                     target  psql  outcome  prepared while down
scenario coord-before-prepare          router  err   none     0
scenario coord-after-early-prepare     router  err   none     1
scenario coord-after-prepare           router  err   none     1
scenario coord-after-decide            router  err   both     1
scenario coord-between-commits         router  ok    both     0
scenario coord-after-commits           router  ok    both     0
scenario shard-before-prepare          shard0  err   none     -
scenario shard-after-prepare           shard0  err   none     -
scenario shard-before-commit-prepared  shard0  ok    both     -
scenario shard-after-commit-prepared   shard0  ok    both     -
scenario shard-before-decide           shard1  err   none     -
scenario shard-after-decide            shard1  any   both     -
fi

# ---- blocking: prepared participants, no decision, router down ----------------
a=${s0[$pair]} b=${s1[$pair]} other=${s0[$((pair + 1))]}
a0=$(bal 0 "$a"); b0=$(bal 1 "$b")
t "blocking: router armed at coord-after-prepare" 'arm coord-after-prepare router'
rpid=$(cat "$dir/router.pid")
out=$(transfer "$a" "$b")
# with shard 1 deciding, only shard 0 is prepared: shard 1's part was
# rolled back when the router's connection closed
if [ "$mode" = router ]; then bprep=2; else bprep=1; fi
t "blocking: the router crashed with $bprep participant(s) prepared" 'wait_gone "$rpid" && [ "$(nprepared)" = $bprep ]'
t_crash=$(now_ms)
# both held rows at once (each waits for the lock timeout, 5 s by default)
w0=$(now_ms)
sq 0 "UPDATE accounts SET balance = balance + 1 WHERE id = $a" >"$dir/w0.out" 2>&1 &
j0=$!
if [ "$mode" = router ]; then
	sq 1 "UPDATE accounts SET balance = balance + 1 WHERE id = $b" >"$dir/w1.out" 2>&1 &
	j1=$!
fi
t0=$(now_ms)
t "blocking: another row on the same shard stays writable" 'bump 0 "$other" && [ $(( $(now_ms) - t0 )) -lt 2000 ]'
t "blocking: reads of the held rows do not wait" '[ "$(bal 0 "$a")" = "$a0" ] && [ "$(bal 1 "$b")" = "$b0" ]'
if [ "$mode" != router ]; then
	t0=$(now_ms)
	t "blocking: the deciding shard's row was never prepared: writable at once" 'bump 1 "$b" && [ $(( $(now_ms) - t0 )) -lt 2000 ]'
fi
wait "$j0"; r0=$?
waited=$(( $(now_ms) - w0 ))
diag "blocking: a direct UPDATE of the held row on shard 0 answered after $waited ms: $(cat "$dir/w0.out")"
t "blocking: an UPDATE of the held row on shard 0 waits, then fails with 40001" '[ "$r0" != 0 ] && grep -q "ERROR 40001" "$dir/w0.out" && [ "$waited" -ge 3000 ]'
if [ "$mode" = router ]; then
	wait "$j1"; r1=$?
	t "blocking: an UPDATE of the held row on shard 1 waits, then fails with 40001" '[ "$r1" != 0 ] && grep -q "ERROR 40001" "$dir/w1.out"'
fi
t "blocking: still $bprep prepared while the router is down" '[ "$(nprepared)" = $bprep ]'
# a writer waiting when the router comes back gets through once it resolves
sq 0 "UPDATE accounts SET balance = balance + 1 WHERE id = $a" >"$dir/w2.out" 2>&1 &
j2=$!
sleep 0.1
t_restart=$(now_ms)
t "blocking: the router restarts" 'start'
t_release=0
for i in $(seq 1 100); do
	if [ "$(nprepared)" = 0 ]; then t_release=$(now_ms); break; fi
	sleep 0.1
done
wait "$j2"; r2=$?
t_writer=$(now_ms)
t "blocking: the rows are released (presumed abort) within 5 s of the router restart" '[ "$t_release" -gt 0 ] && [ $(( t_release - t_restart )) -le 5000 ]'
diag "blocking: rows held for $(( t_release - t_crash )) ms after the crash; released $(( t_release - t_restart )) ms after the router restart; a waiting writer got through $(( t_writer - t_restart )) ms after it"
t "blocking: the writer waiting across the restart succeeded" '[ "$r2" = 0 ] && [ "$(cat "$dir/w2.out")" = "OK 1" ]'
t "blocking: the transfer was rolled back on both shards (the writer's +1 applied)" '[ "$(bal 0 "$a")" = $((a0 + 1)) ] && [ "$(bal 1 "$b")" = "$b0" ]'
t "blocking: the writer's +1 undone" '[ "$(sq 0 "UPDATE accounts SET balance = balance - 1 WHERE id = $a")" = "OK 1" ]'
t "blocking: SHOW TRANSACTIONS is empty" 'wait_settled 5'

# ---- the whole run --------------------------------------------------------------
t "every scenario crashed its target once ($crashes)" '[ "$(cat "$dir"/*.log | grep -c "^failpoint .*: crashing")" = $((crashes + 1)) ]'
t "the total read on the shards is still $total" '[ "$(direct_total)" = "$total" ]'
t "sum(balance) through the router is $total" '[ "$(q "SELECT sum(balance) FROM accounts")" = "$total" ]'
t "count(*) through the router is 60" '[ "$(q "SELECT count(*) FROM accounts")" = 60 ]'
t "router and both shards are running" '"$bin" cluster status --dir "$dir" | grep -c running | grep -qx 3'
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
diag "elapsed ${SECONDS} s"
echo "1..$n"
exit $failed

# Note: `cluster start` decides a child it just forked is dead when
# /proc/PID/cmdline reads empty, which also happens while the child is in
# execve(); it then reports "did not come up" though the process runs.
# Running start again is harmless (it restarts only what is down).
