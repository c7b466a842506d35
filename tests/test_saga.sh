#!/usr/bin/env bash
# Saga mode end to end (coordinator/saga.h, docs/transactions.md): a
# 2-shard cluster, psql as the client, kill -9 for crashes.
#  - BEGIN SAGA / COMMIT / ROLLBACK, a failing step compensates the others
#    and the client gets the cause's SQLSTATE; SET transaction_mode = 'saga';
#    an autocommit write over several shards runs as an implicit saga;
#  - COMPENSATE WITH, and its refusals;
#  - a derived compensation meeting a changed row stops in "needs
#    attention" (SHOW SAGAS), and RESOLVE SAGA settles it;
#  - a failure injected at each step and at each compensation, in the
#    router and in each shard (failpoints), and a router killed between two
#    steps: after restart and quiescence every saga is completed or
#    compensated, nothing is open on the shards, the total is unchanged;
#  - a dead shard: steps fail after retries, then fast (circuit open), and
#    work again once the shard is back.
set -u
export LC_ALL=C
bin=${SHARDLITE:?}
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
command -v timeout >/dev/null || { echo "1..0 # SKIP timeout not installed"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir saga
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export SHARDLITE_SAGA_RETRIES=3 SHARDLITE_SAGA_BACKOFF_MS=20

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=tester PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 20 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# a script of statements (one per line), verbose errors, stop at the first
qs() { timeout 30 psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -f - 2>&1; }
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
bal() { sq "$1" "SELECT balance FROM accounts WHERE id = $2" 2>/dev/null; }
direct_total() {
	local a b
	a=$(sq 0 "SELECT sum(balance) FROM accounts" 2>/dev/null) || return 1
	b=$(sq 1 "SELECT sum(balance) FROM accounts" 2>/dev/null) || return 1
	echo $((a + b))
}
# open saga steps on both shards ("?" if one does not answer)
nopen() {
	local a b
	a=$(sq 0 "SELECT count(*) FROM _sl_saga WHERE state IN ('done', 'attention')" 2>/dev/null) || { echo "?"; return; }
	b=$(sq 1 "SELECT count(*) FROM _sl_saga WHERE state IN ('done', 'attention')" 2>/dev/null) || { echo "?"; return; }
	echo $((a + b))
}
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }
wait_gone() { local i; for i in $(seq 1 100); do alive "$1" || return 0; sleep 0.05; done; return 1; }
pidfile() { if [ "$1" = router ]; then echo "$dir/router.pid"; else echo "$dir/shard-${1#shard}.pid"; fi; }
logfile() { if [ "$1" = router ]; then echo "$dir/router.log"; else echo "$dir/shard-${1#shard}.log"; fi; }
start() {
	local i
	for i in 1 2 3; do
		"$bin" cluster start --dir "$dir" "$@" >/dev/null 2>>"$dir/start.err" && return 0
		diag "cluster start failed (attempt $i): $(tail -1 "$dir/start.err")"
		sleep 0.2
	done
	return 1
}
# quiescent: no saga listed by the router, no open step on either shard
wait_quiet() {
	local deadline=$(( $(now_ms) + $1 * 1000 )) out
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if [ "$(nopen)" = 0 ] && out=$(q "SHOW SAGAS") && [ -z "$out" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# a saga touching both shards succeeds (a shard just restarted may still
# have its circuit open for a moment); polls up to $1 seconds
wait_circuits() {
	local deadline=$(( $(now_ms) + $1 * 1000 ))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance WHERE id = %s;\nUPDATE accounts SET balance = balance WHERE id = %s;\nROLLBACK;\n' \
			"${s0[0]}" "${s1[0]}" | qs >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

t "2-shard cluster starts" 'start --shards 2 --port $port'
t "CREATE TABLE accounts" 'q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)) PARTITION BY HASH (id)" >/dev/null'
vals=$(seq 1 60 | sed 's/.*/(&, 1000)/' | paste -sd, -)
t "60 accounts of 1000" 'q "INSERT INTO accounts (id, balance) VALUES $vals" >/dev/null'
total=60000
read -r -a s0 <<<"$(sq 0 "SELECT id FROM accounts ORDER BY id" | tr '\n' ' ')"
read -r -a s1 <<<"$(sq 1 "SELECT id FROM accounts ORDER BY id" | tr '\n' ' ')"
t "both shards hold at least 16 accounts" '[ "${#s0[@]}" -ge 16 ] && [ "${#s1[@]}" -ge 16 ]'
A=${s0[0]} B=${s1[0]}

# ---- outcomes ------------------------------------------------------------------------
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' $A $B | qs)
t "BEGIN SAGA ... COMMIT" '[ $? = 0 ] && [ "$(bal 0 $A)" = 990 ] && [ "$(bal 1 $B)" = 1010 ]'
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nROLLBACK;\n' $A $B | qs)
t "ROLLBACK compensates both steps" '[ "$(bal 0 $A)" = 990 ] && [ "$(bal 1 $B)" = 1010 ]'
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nUPDATE accounts SET balance = balance - 5000 WHERE id = %s;\n' $A $B | qs)
t "a step violating a CHECK fails with 23514 ($(echo "$out" | grep -o 'ERROR: *[0-9A-Z]*' | head -1))" \
  'echo "$out" | grep -q "ERROR: *23514"'
t "... and says the saga was rolled back" 'echo "$out" | grep -q "rolled back"'
t "... and the completed step was compensated" '[ "$(bal 0 $A)" = 990 ] && [ "$(bal 1 $B)" = 1010 ]'
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 5000 WHERE id = %s;\nSELECT 1;\nCOMMIT;\n' $A | timeout 20 psql -X -q -A -t 2>&1)
t "after a failed step the block is aborted (25P02) and COMMIT ends it as ROLLBACK" \
  'echo "$out" | grep -q "current transaction is aborted"'
out=$(printf "SET transaction_mode = 'saga';\nSHOW transaction_mode;\nBEGIN;\nUPDATE accounts SET balance = balance - 1 WHERE id = %s;\nUPDATE accounts SET balance = balance + 1 WHERE id = %s;\nSHOW SAGAS;\nCOMMIT;\n" $A $B | qs)
t "SET transaction_mode = 'saga': BEGIN starts a saga, listed as running" \
  'echo "$out" | grep -q "^saga$" && echo "$out" | grep -q "|running|1@0, 2@1|" && [ "$(bal 0 $A)" = 989 ] && [ "$(bal 1 $B)" = 1011 ]'
out=$(printf "SET transaction_mode = 'saga';\nINSERT INTO accounts VALUES (1001, 5), (1002, 5), (1003, 5), (1004, 5), (1005, 5), (1006, 5), (%s, 5);\n" $B | qs)
t "saga mode: a multi-shard INSERT with a duplicate key fails with 23505" 'echo "$out" | grep -q "ERROR: *23505"'
t "... and the rows it inserted elsewhere were compensated" '[ "$(q "SELECT count(*) FROM accounts WHERE id > 1000")" = 0 ]'
out=$(printf "SET transaction_mode = 'saga';\nINSERT INTO accounts VALUES (1001, 5), (1002, 5), (1003, 5), (1004, 5);\nDELETE FROM accounts WHERE id > 1000;\n" | qs)
t "saga mode: multi-shard INSERT and DELETE as implicit sagas" '[ "$out" = "" ] && [ "$(q "SELECT count(*) FROM accounts WHERE id > 1000")" = 0 ]'
t "SET transaction_mode = 'xa' is refused (22023)" 'q "SET transaction_mode = '"'"'xa'"'"'" | grep -q "2pc. or .saga"'

# ---- COMPENSATE WITH -------------------------------------------------------------------
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 7 WHERE id = %s COMPENSATE WITH UPDATE accounts SET balance = balance + 7 WHERE id = %s;\nUPDATE accounts SET balance = balance + 100 WHERE id = %s;\nROLLBACK;\n' $A $A $A | qs)
t "an explicit compensation runs as written on ROLLBACK (the derived one undoes the other step)" '[ "$(bal 0 $A)" = 989 ]'
out=$(printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 7 WHERE id = %s COMPENSATE WITH UPDATE accounts SET balance = balance + 7 WHERE id = %s;\n' $A $B | qs)
t "a compensation reaching another shard than its step is refused (0A000)" 'echo "$out" | grep -q "ERROR: *0A000" && [ "$(bal 0 $A)" = 989 ]'
out=$(q "UPDATE accounts SET balance = balance WHERE id = $A COMPENSATE WITH UPDATE accounts SET balance = balance WHERE id = $A")
t "COMPENSATE WITH outside a saga is refused" 'echo "$out" | grep -q "belongs to a saga step"'

# ---- needs attention ---------------------------------------------------------------------
C=${s1[1]}
c0=$(bal 1 $C)
( printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance + 5 WHERE id = %s;\n' $C; sleep 1.5; printf 'ROLLBACK;\n' ) |
	timeout 20 psql -X -q -A -t -v VERBOSITY=verbose >"$dir/attn.out" 2>&1 &
apid=$!
sleep 0.7
t "meanwhile another client changes the saga's row" 'q "UPDATE accounts SET balance = 4242 WHERE id = $C" >/dev/null'
wait $apid
t "ROLLBACK reports that the saga needs attention" 'grep -q "needs attention" "$dir/attn.out"'
t "the other client's value is not overwritten" '[ "$(bal 1 $C)" = 4242 ]'
sleep 1.3
sg=$(q "SHOW SAGAS")
t "SHOW SAGAS lists it as needing attention, with the row ($sg)" 'echo "$sg" | grep -q "|needs attention|" && echo "$sg" | grep -q "accounts($C)"'
id=${sg%%|*}
t "RESOLVE SAGA OVERWRITE restores the before-image" 'q "RESOLVE SAGA '"'"'$id'"'"' OVERWRITE" >/dev/null && [ "$(bal 1 $C)" = "$c0" ]'
t "RESOLVE of a settled saga is an error" 'q "RESOLVE SAGA '"'"'$id'"'"' ACCEPT" | grep -q "no open steps"'
D=${s1[2]}
( printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance + 5 WHERE id = %s;\n' $D; sleep 1.5; printf 'ROLLBACK;\n' ) |
	timeout 20 psql -X -q -A -t >/dev/null 2>&1 &
apid=$!
sleep 0.7
q "UPDATE accounts SET balance = 1000 WHERE id = $D" >/dev/null
wait $apid
sleep 1.3
id=$(q "SHOW SAGAS" | cut -d'|' -f1)
t "RESOLVE SAGA ACCEPT keeps the rows as they are" 'q "RESOLVE SAGA '"'"'$id'"'"' ACCEPT" >/dev/null && [ "$(bal 1 $D)" = 1000 ]'
t "quiet: nothing open" 'wait_quiet 5'

# A committed saga's SagaEnd rides on the next step sent to its shard
# (Request.ended): 20 sagas of one step each on shard 0, back to back, cost
# shard 0 about 20 requests, not 40 (a SagaEnd each).
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
reqs() { "$status" "127.0.0.1:$((port + 1))" stats | awk -F'\t' '$1 == "requests" {print $2}'; }
r0=$(reqs)
for i in $(seq 1 20); do
	printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance + 0 WHERE id = %s;\nCOMMIT;\n' "${s0[1]}"
done | qs >/dev/null
rc=$?
sleep 0.3  # the last saga's SagaEnd goes alone, 5 ms later
r1=$(reqs)
t "20 one-step sagas, back to back" '[ $rc = 0 ] && wait_quiet 5'
# 20 steps, the last SagaEnd, this Status, and the recovery sweeps' listings
# (one a second from each of the router's two sweeps)
t "... cost shard 0 at most 30 requests, not 40: their SagaEnds rode on the next steps ($((r1 - r0)))" \
	'[ -n "$r0" ] && [ -n "$r1" ] && [ $((r1 - r0)) -ge 20 ] && [ $((r1 - r0)) -le 30 ]'
total=$(direct_total)
diag "total after the functional part: $total"

# ---- failures at each step and each compensation ----------------------------------------
arm() {
	local pid
	pid=$(cat "$(pidfile "$2")")
	kill -9 "$pid"
	wait_gone "$pid" || return 1
	SHARDLITE_FAILPOINTS="$1" start || return 1
	alive "$(cat "$(pidfile "$2")")"
}
# saga transfer of 10 from $1 (shard 0) to $2 (shard 1), ending with $3
transfer() {
	printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\n%s;\n' "$1" "$2" "$3" | qs
}
pair=4
# scenario FAILPOINT TARGET END OUTCOME: OUTCOME both | none after recovery
scenario() {
	local fp=$1 target=$2 end=$3 want=$4
	local a=${s0[$pair]} b=${s1[$pair]} name="$1 in $2 ($3)"
	pair=$((pair + 1))
	local a0 b0 a1 b1 out pid log before after
	a0=$(bal 0 "$a"); b0=$(bal 1 "$b")
	log=$(logfile "$target")
	before=$(grep -c "failpoint ${fp%%=*}: crashing" "$log" 2>/dev/null)
	if ! arm "$fp" "$target"; then
		ok 1 "$name: restarted with the failpoint armed"
		return
	fi
	pid=$(cat "$(pidfile "$target")")
	out=$(transfer "$a" "$b" "$end")
	wait_gone "$pid"; local gone=$?
	after=$(grep -c "failpoint ${fp%%=*}: crashing" "$log" 2>/dev/null)
	ok $(( gone != 0 || after != before + 1 )) "$name: the $target crashed at the failpoint"
	diag "$name: psql said: $(echo "$out" | tail -1)"
	t "$name: the $target restarts" 'start && alive "$(cat "$(pidfile "$target")")"'
	t "$name: sagas reach both shards again (circuits closed)" 'wait_circuits 10'
	t "$name: quiet within 15 s (every saga completed or compensated)" 'wait_quiet 15'
	a1=$(bal 0 "$a"); b1=$(bal 1 "$b")
	local got=mixed
	if [ "$a1" = "$a0" ] && [ "$b1" = "$b0" ]; then got=none
	elif [ "$a1" = $((a0 - 10)) ] && [ "$b1" = $((b0 + 10)) ]; then got=both; fi
	ok $([ "$got" = "$want" ]; echo $?) "$name: the transfer ends applied on $want (got $got: id $a $a0 -> $a1, id $b $b0 -> $b1)"
	ok $([ "$(direct_total)" = "$total" ]; echo $?) "$name: the total is unchanged ($total)"
}
#        failpoint                        target  end       outcome
scenario router.saga.commit               router  COMMIT    none
scenario router.saga.logged               router  COMMIT    both
scenario router.saga.undo                 router  ROLLBACK  none
scenario router.saga.undo=crash-after:1   router  ROLLBACK  none
scenario shard.saga.step                  shard0  COMMIT    none
scenario shard.saga.step                  shard1  COMMIT    none
scenario shard.saga.undo                  shard0  ROLLBACK  none
scenario shard.saga.undo                  shard1  ROLLBACK  none

# the router killed between two steps: the saga is compensated after restart
a=${s0[$pair]} b=${s1[$pair]}
a0=$(bal 0 "$a")
( printf 'BEGIN SAGA;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\n' "$a"; sleep 3 ) |
	timeout 20 psql -X -q -A -t >/dev/null 2>&1 &
ppid=$!
sleep 0.8
t "mid-saga: the first step is applied" '[ "$(bal 0 "$a")" = $((a0 - 10)) ]'
rpid=$(cat "$dir/router.pid")
kill -9 "$rpid"; wait_gone "$rpid"
wait $ppid 2>/dev/null
t "mid-saga: router killed, restarted" 'start'
t "mid-saga: quiet within 15 s" 'wait_quiet 15'
t "mid-saga: the step was compensated ($(bal 0 "$a"))" '[ "$(bal 0 "$a")" = "$a0" ]'
t "mid-saga: the total is unchanged" '[ "$(direct_total)" = "$total" ]'

# ---- a dead shard: retries, then the circuit breaker --------------------------------------
a0=$(bal 0 "${s0[$pair]}")
spid=$(cat "$dir/shard-1.pid")
kill -9 "$spid"; wait_gone "$spid"
out=$(transfer "${s0[$pair]}" "${s1[$pair]}" COMMIT)
t "shard 1 down: the step on it fails with 08006 after retries" 'echo "$out" | grep -q "ERROR: *08006"'
t "... the router logged the circuit opening" 'grep -q "circuit open" "$dir/router.log"'
out=$(transfer "${s0[$pair]}" "${s1[$pair]}" COMMIT)
t "... a later step fails fast: circuit open" 'echo "$out" | grep -q "circuit open"'
t "... and the step on shard 0 was compensated" '[ "$(bal 0 "${s0[$pair]}")" = "$a0" ]'
t "shard 1 restarts" 'start'
okc=1
for i in $(seq 1 60); do
	out=$(transfer "${s0[$pair]}" "${s1[$pair]}" ROLLBACK)
	if ! echo "$out" | grep -q ERROR; then okc=0; break; fi
	sleep 0.25
done
ok $okc "the probe closes the circuit: sagas reach shard 1 again"
t "grep: the router logged the circuit closing" 'grep -q "circuit closed" "$dir/router.log"'
t "quiet at the end" 'wait_quiet 15'
t "the total is unchanged at the end" '[ "$(direct_total)" = "$total" ]'
t "the rows are writable" 'q "UPDATE accounts SET balance = balance WHERE id = $A" >/dev/null'
# a clean stop lets LeakSanitizer speak in sanitizer builds
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the router's and shards' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'

echo "1..$n"
exit $failed
