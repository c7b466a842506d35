#!/usr/bin/env bash
# Online rebalancing end to end (router/rebalance.h, docs/rebalance.md):
#  - a 2-shard cluster under the bank demo's load (2PC, then sagas) grows to
#    4 shards with `cluster add-shard` and REBALANCE while transfers run:
#    the bank's own final check (every account holds exactly what the
#    acknowledged transfers say, the total is exact) must pass, no row is
#    lost or duplicated, the new shards hold their share, and a static
#    table's row count and checksum are unchanged;
#  - a move waiting in its cutover: its copy is in the target's table, hidden
#    (scatter reads count every row once), and deleted when it is cancelled;
#  - MOVE BUCKET with the router killed at each rebalance failpoint (after
#    the copy, at the cutover, after the map flip, before and after the
#    switch commit), the target shard killed -9 mid-move, and the target
#    crashing at its failpoints before PREPARE and before COMMIT PREPARED of
#    the switch transaction: after
#    restart the move ends done, the bucket's rows are on exactly one shard,
#    totals unchanged;
#  - ALTER CLUSTER REMOVE SHARD under the 2PC load: the shard is drained
#    and removed, nothing lost;
#  - RANGE tables: SPLIT AT, MOVE RANGE while writes run on the range, a
#    router crash after the range's owner flipped;
#  - errors: MOVE BUCKET to a shard that does not exist, inside a
#    transaction block, CANCEL REBALANCE.
set -u
export LC_ALL=C
bin=${SHARDLITE:?}
bank=${BUILDDIR:-.}/examples/bank
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
[ -x "$bank" ] || { echo "1..0 # SKIP examples/bank not built"; exit 0; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-rebalance-XXXXXX")
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cdir=""
cleanup() {
	for c in "$dir"/c*; do [ -d "$c" ] && "$bin" cluster stop --dir "$c" >/dev/null 2>&1; done
	grep -h "Sanitizer\|runtime error" "$dir"/c*/*.log 2>/dev/null | head -5
	rm -rf "$dir"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGUSER=tester PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 30 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((PGPORT + 1 + $1))" "$2" 2>/dev/null; }
# every move done or cancelled (none queued or running), within $1 seconds
wait_moves() {
	local i
	for i in $(seq 1 $(($1 * 5))); do
		[ "$(q "SHOW REBALANCE" | grep -Evc '\|(done|cancelled)\|')" = 0 ] && return 0
		sleep 0.2
	done
	q "SHOW REBALANCE" | sed 's/^/# /' | head -20
	return 1
}
rows_on() { local s=$1; sq "$s" "SELECT count(*) FROM accounts"; }
# no bucket hidden (a move's copy or leftovers, _slhidden) on the shards given
hidden_none() {
	local s
	for s in "$@"; do [ "$(sq "$s" "SELECT count(*) FROM _slhidden")" = 0 ] || return 1; done
}

# ---- 2 -> 4 shards under the bank's load ------------------------------------
grow_under_load() {
	local mode=$1
	cdir=$dir/c$mode
	PGPORT=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
	export PGPORT
	"$bank" --shardlite "$bin" --dir "$cdir" --port "$PGPORT" --shards 2 --accounts 4000 --clients 4 \
		--seconds 18 --mode "$mode" --seed 7 --keep >"$dir/bank-$mode.out" 2>&1 &
	local bpid=$!
	local i loaded=0
	for i in $(seq 1 150); do
		[ "$(q "SELECT count(*) FROM accounts" 2>/dev/null)" = 4000 ] && { loaded=1; break; }
		sleep 0.2
	done
	t "$mode: the bank loaded its 4000 accounts on 2 shards" '[ $loaded = 1 ]'
	q "CREATE TABLE ledger (id BIGINT PRIMARY KEY, note TEXT NOT NULL) PARTITION BY HASH (id)" >/dev/null
	q "INSERT INTO ledger SELECT 1, 'x'" >/dev/null 2>&1
	local vals
	vals=$(seq 1 1500 | awk '{printf "%s(%d, '\''note %d'\'')", (NR > 1 ? ", " : ""), $1, $1 * 7}')
	q "INSERT INTO ledger VALUES $vals" >/dev/null
	local before
	before=$(q "SELECT count(*), sum(id), sum(length(note) * id), min(note), max(note) FROM ledger")
	sleep 1
	t "$mode: cluster add-shard starts shard 2 and registers it" \
		'"$bin" cluster add-shard --dir "$cdir" >/dev/null 2>"$dir/add.err" || { cat "$dir/add.err"; false; }'
	t "$mode: cluster add-shard starts shard 3 and registers it" \
		'"$bin" cluster add-shard --dir "$cdir" >/dev/null 2>"$dir/add.err" || { cat "$dir/add.err"; false; }'
	t "$mode: the new shards got the schema (ledger exists on shard 3, empty)" '[ "$(sq 3 "SELECT count(*) FROM ledger")" = 0 ]'
	local out
	out=$(q "REBALANCE")
	t "$mode: REBALANCE plans moves while transfers run" \
		'echo "$out" | grep -q "bucket move(s) planned" && ! echo "$out" | grep -q ERROR'
	t "$mode: every move is done within 60 s" 'wait_moves 60'
	t "$mode: two moves ran at once (lanes)" 'grep -q "starts on lane [0-9] beside move" "$cdir/router.log"'
	# planning built every shard's bucket index, so the first pair of moves
	# to run at once shares no shard (0 -> 2 beside 1 -> 3: pick_move)
	local pair a b sa sb
	pair=$(grep -m1 -oE 'move [0-9]+ starts on lane [0-9] beside move [0-9]+' "$cdir/router.log")
	a=$(echo "$pair" | awk '{print $2}'); b=$(echo "$pair" | awk '{print $NF}')
	sa=$(grep -m1 -E "move ${a:-x} \\(" "$cdir/router.log" | grep -oE 'shard [0-9]+ -> [0-9]+' | grep -oE '[0-9]+')
	sb=$(grep -m1 -E "move ${b:-x} \\(" "$cdir/router.log" | grep -oE 'shard [0-9]+ -> [0-9]+' | grep -oE '[0-9]+')
	t "$mode: the first two moves side by side share no shard (moves ${a:-?} and ${b:-?}: shards $(echo $sa) and $(echo $sb))" \
		'[ -n "$sa" ] && [ -n "$sb" ] && [ -z "$(printf "%s\n" $sa $sb | sort | uniq -d)" ]'
	# the sources' rows are deleted once every move is copied and cut over
	# (no move of this plan waits for another's cleanup)
	local last_cut first_clean
	last_cut=$(grep -n 'buckets, shard [0-9]* -> [0-9]*) cleanup: ' "$cdir/router.log" | tail -1 | cut -d: -f1)
	first_clean=$(grep -n ': cleanup on shard ' "$cdir/router.log" | head -1 | cut -d: -f1)
	t "$mode: no source deleted rows before the last move was cut over (log lines ${first_clean:-?} > ${last_cut:-?})" \
		'[ -n "$last_cut" ] && [ -n "$first_clean" ] && [ "$first_clean" -gt "$last_cut" ]'
	t "$mode: the bank was still running during the moves" 'kill -0 $bpid 2>/dev/null'
	local removed=none
	if [ "$mode" = 2pc ]; then
		removed=3
		out=$(q "ALTER CLUSTER REMOVE SHARD 3")
		t "$mode: ALTER CLUSTER REMOVE SHARD 3 drains it while transfers run" '! echo "$out" | grep -q ERROR'
		local i gone=0
		for i in $(seq 1 150); do
			q "SHOW SHARDS" | grep -q '^3|.*|removed|0|$' && { gone=1; break; }
			sleep 0.2
		done
		t "$mode: shard 3 is removed once its buckets moved (SHOW SHARDS)" '[ $gone = 1 ]'
		t "$mode: the bank was still running during the removal" 'kill -0 $bpid 2>/dev/null'
	fi
	wait $bpid
	local brc=$?
	t "$mode: the bank's final check passes (no transfer lost or applied twice, total exact)" \
		'[ $brc = 0 ] || { grep -v "^ *[0-9]*s " "$dir/bank-$mode.out" | head -30 | sed "s/^/# /"; false; }'
	grep -E "transfers/s|audits|total" "$dir/bank-$mode.out" | head -4 | sed 's/^/# /'
	local c0 c1 c2 c3
	c0=$(rows_on 0); c1=$(rows_on 1); c2=$(rows_on 2); c3=$(rows_on 3)
	diag "$mode: accounts per shard: $c0 $c1 $c2 $c3"
	t "$mode: no row lost or duplicated (rows on the shards add up to 4000)" '[ $((c0 + c1 + c2 + c3)) = 4000 ]'
	t "$mode: the router counts 4000 rows" '[ "$(q "SELECT count(*) FROM accounts")" = 4000 ]'
	t "$mode: SHOW SHARDS counts every row once (4000 accounts + 1500 ledger rows)" \
		'[ "$(q "SHOW SHARDS" | awk -F"|" "{s += \$5} END {print s}")" = 5500 ]'
	if [ $removed = 3 ]; then
		t "$mode: the removed shard holds nothing, the new one its share" '[ "$c3" = 0 ] && [ "$c2" -ge 800 ]'
		t "$mode: the old shards gave theirs up (<= 1800 rows each)" '[ "$c0" -le 1800 ] && [ "$c1" -le 1800 ]'
	else
		t "$mode: the new shards hold their share (>= 600 rows each)" '[ "$c2" -ge 600 ] && [ "$c3" -ge 600 ]'
		t "$mode: the old shards gave theirs up (<= 1400 rows each)" '[ "$c0" -le 1400 ] && [ "$c1" -le 1400 ]'
	fi
	local after
	after=$(q "SELECT count(*), sum(id), sum(length(note) * id), min(note), max(note) FROM ledger")
	t "$mode: the static table's row count and checksum are unchanged ($after)" '[ "$before" = "$after" ]'
	t "$mode: every move reports a verified checksum" \
		'[ "$(q "SHOW REBALANCE" | grep -c "rows, checksum")" = "$(q "SHOW REBALANCE" | wc -l)" ]'
	t "$mode: no bucket is left hidden on any shard (_slhidden empty)" \
		'hidden_none 0 1 2 3'
	t "$mode: no staging table is left on the new shards" \
		'[ "$(sq 2 "SELECT count(*) FROM sqlite_master WHERE substr(name, 1, 8) = '\''_slmove_'\''")" = 0 ]'
	"$bin" cluster stop --dir "$cdir" >/dev/null 2>&1
}

grow_under_load 2pc
grow_under_load saga

# ---- crashes mid-move -----------------------------------------------------------
cdir=$dir/ccrash
PGPORT=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGPORT
"$bin" cluster start --dir "$cdir" --shards 3 --port "$PGPORT" >/dev/null || { echo "Bail out! cluster start"; exit 1; }
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)) PARTITION BY HASH (id)" >/dev/null
vals=$(seq 1 3000 | awk '{printf "%s(%d, 100)", (NR > 1 ? ", " : ""), $1}')
q "INSERT INTO accounts VALUES $vals" >/dev/null
t "crash: 3000 accounts loaded" '[ "$(q "SELECT count(*), sum(balance) FROM accounts")" = "3000|300000" ]'
# crash_at PROC FAILPOINT SQL: kill -9 PROC (router or shard-N), restart it
# with FAILPOINT armed, run SQL, wait (5 s at most) for it to die there.
# crashed PROC FAILPOINT: it is dead and its log names the failpoint.
crash_at() {
	local pid i
	pid=$(cat "$cdir/$1.pid")
	kill -9 "$pid"
	while alive "$pid"; do sleep 0.05; done
	SHARDLITE_FAILPOINTS=$2 "$bin" cluster start --dir "$cdir" >/dev/null 2>&1
	q "$3" >/dev/null
	pid=$(cat "$cdir/$1.pid")
	for i in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
}
crashed() { ! alive "$(cat "$cdir/$1.pid")" && grep -q "failpoint $2" "$cdir/$1.log"; }
owner_of() { q "EXPLAIN SELECT * FROM accounts WHERE id = $1" | sed -n 's/^Shard \([0-9]*\) .*/\1/p'; }
bucket_of() { q "EXPLAIN SELECT * FROM accounts WHERE id = $1" | sed -n 's/.*bucket \([0-9]*\) -> shard.*/\1/p'; }
key=1
for fp in router.rebalance.copied router.rebalance.cutover router.rebalance.before_switch \
	router.rebalance.switched router.rebalance.commit router.rebalance.applied target-kill \
	switch-kill-target switch-kill-source; do
	key=$((key + 37))
	b=$(bucket_of $key); from=$(owner_of $key); to=$(((from + 1) % 3))
	if [ "${fp#switch-kill-}" != "$fp" ]; then
		# a shard is killed -9 in the switch while the router sleeps at a
		# failpoint: the target before its insert from staging, or the
		# source after the target's insert and before its own delete (the
		# rows then on both shards); the switch is retried until the shard
		# is back, and the move finishes
		if [ "$fp" = switch-kill-target ]; then at=router.rebalance.switched; victim=$to
		else at=router.rebalance.commit; victim=$from; fi
		pid=$(cat "$cdir/router.pid"); kill -9 "$pid"; while alive "$pid"; do sleep 0.05; done
		SHARDLITE_FAILPOINTS=$at=delay:1500 "$bin" cluster start --dir "$cdir" >/dev/null 2>&1
		q "MOVE BUCKET $b TO SHARD $to" >/dev/null
		for i in $(seq 1 100); do grep -q "failpoint $at: delaying" "$cdir/router.log" && break; sleep 0.05; done
		t "$fp: the router paused at $at" 'grep -q "failpoint $at: delaying" "$cdir/router.log"'
		kill -9 "$(cat "$cdir/shard-$victim.pid")"
		sleep 2
		"$bin" cluster start --dir "$cdir" >/dev/null 2>&1
		t "$fp: the move ends done once shard $victim is back" 'wait_moves 30'
		t "$fp: the switch was retried while shard $victim was down" 'grep -q "switch: .*retrying" "$cdir/router.log"'
		# the next crash runs unarmed
		pid=$(cat "$cdir/router.pid"); kill -9 "$pid"; while alive "$pid"; do sleep 0.05; done
		"$bin" cluster start --dir "$cdir" >/dev/null 2>&1
	elif [ "$fp" = target-kill ]; then
		q "UPDATE accounts SET balance = balance + 0 WHERE id = $key" >/dev/null
		q "MOVE BUCKET $b TO SHARD $to" >/dev/null
		kill -9 "$(cat "$cdir/shard-$to.pid")" 2>/dev/null
		sleep 0.5
		"$bin" cluster start --dir "$cdir" >/dev/null 2>&1
	else
		crash_at router "$fp" "MOVE BUCKET $b TO SHARD $to"
		t "$fp: the router crashed at the failpoint" 'crashed router "$fp"'
		"$bin" cluster start --dir "$cdir" >/dev/null 2>&1
	fi
	t "$fp: the move ends done after restart" 'wait_moves 30'
	t "$fp: bucket $b is on shard $to now" '[ "$(owner_of $key)" = "$to" ]'
	t "$fp: row $key is on shard $to only" \
		'[ "$(sq $to "SELECT count(*) FROM accounts WHERE id = $key")" = 1 ] && [ "$(sq $from "SELECT count(*) FROM accounts WHERE id = $key")" = 0 ]'
	total=$(( $(sq 0 "SELECT count(*) FROM accounts") + $(sq 1 "SELECT count(*) FROM accounts") + $(sq 2 "SELECT count(*) FROM accounts") ))
	t "$fp: 3000 rows on the shards, sum unchanged" '[ $total = 3000 ] && [ "$(q "SELECT count(*), sum(balance) FROM accounts")" = "3000|300000" ]'
	t "$fp: the row is readable and writable" '[ "$(q "UPDATE accounts SET balance = balance + 1 WHERE id = $key; UPDATE accounts SET balance = balance - 1 WHERE id = $key; SELECT balance FROM accounts WHERE id = $key")" = 100 ]'
done

# ---- a bucket move's copy is hidden on the target until its switch ----------------
# A transaction holds a row of the bucket open on the source, so the move
# waits in its cutover (drain) with its copy already in the target's table.
hold_txn() {
	( echo "BEGIN;"; echo "UPDATE accounts SET balance = balance + 0 WHERE id = $1;"; sleep "$2"; echo "COMMIT;" ) |
		timeout 30 psql -X -q >/dev/null 2>&1
}
wait_copy() {
	local i
	for i in $(seq 1 100); do
		[ "$(sq "$1" "SELECT count(*) FROM accounts WHERE id = $2")" = 1 ] && return 0
		sleep 0.05
	done
	return 1
}
key=1201; b=$(bucket_of $key); from=$(owner_of $key); to=$(((from + 1) % 3))
hold_txn $key 3 &
hpid=$!
sleep 0.5
q "MOVE BUCKET $b TO SHARD $to" >/dev/null
t "hidden: the copy of row $key is in shard $to's table while a transaction holds the row on shard $from" 'wait_copy $to $key'
t "hidden: shard $to hides bucket $b (_slhidden)" '[ "$(sq $to "SELECT count(*) FROM _slhidden WHERE bucket = $b")" = 1 ]'
t "hidden: a scatter read counts every row once meanwhile" '[ "$(q "SELECT count(*), sum(balance) FROM accounts")" = "3000|300000" ]'
t "hidden: and so does one grouped by balance" '[ "$(q "SELECT balance, count(*) FROM accounts GROUP BY balance")" = "100|3000" ]'
t "hidden: SHOW SHARDS counts the rows each shard shows (3000 in all)" \
	'[ "$(q "SHOW SHARDS" | awk -F"|" "{s += \$5} END {print s}")" = 3000 ]'
wait $hpid
t "hidden: the move ends done once the transaction committed" 'wait_moves 30'
t "hidden: row $key is on shard $to only, no bucket hidden on any shard" \
	'[ "$(sq $from "SELECT count(*) FROM accounts WHERE id = $key")" = 0 ] && [ "$(owner_of $key)" = "$to" ] && hidden_none 0 1 2'
key=1301; b=$(bucket_of $key); from=$(owner_of $key); to=$(((from + 1) % 3))
hold_txn $key 3 &
hpid=$!
sleep 0.5
q "MOVE BUCKET $b TO SHARD $to" >/dev/null
t "cancel: the copy of row $key reached shard $to" 'wait_copy $to $key'
t "cancel: CANCEL REBALANCE cancels the move in its cutover" 'q "CANCEL REBALANCE" | grep -q "NOTICE: *1 bucket move(s) cancelled"'
wait $hpid
t "cancel: the move ends cancelled" 'wait_moves 30 && q "SHOW REBALANCE" | grep -q "|cancelled|"'
t "cancel: shard $to deleted its hidden copy of bucket $b, nothing hidden on any shard" \
	'[ "$(sq $to "SELECT count(*) FROM accounts WHERE sl_bucket(id) = $b")" = 0 ] && hidden_none 0 1 2'
t "cancel: bucket $b stays on shard $from, totals unchanged" \
	'[ "$(owner_of $key)" = "$from" ] && [ "$(q "SELECT count(*), sum(balance) FROM accounts")" = "3000|300000" ]'

# ---- RANGE tables: SPLIT AT, MOVE RANGE (with writes running, and a crash) --------
q "CREATE TABLE ev (k BIGINT PRIMARY KEY, v BIGINT NOT NULL) PARTITION BY RANGE (k) SPLIT AT (1000, 2000)" >/dev/null
vals=$(seq 1 2999 | awk '{printf "%s(%d, 0)", (NR > 1 ? ", " : ""), $1}')
q "INSERT INTO ev VALUES $vals" >/dev/null
t "range: SPLIT AT (1500) splits range 1 in place" \
	'q "ALTER TABLE ev SPLIT AT (1500)" >/dev/null && [ "$(q "SHOW RANGES" | grep -c "^ev|")" = 4 ] && [ "$(q "SHOW RANGES" | sed -n 3p)" = "ev|2|1500|2000|1" ]'
t "range: SPLIT AT an existing split point: 42P16" \
	'timeout 10 psql -X -q -v VERBOSITY=verbose -c "ALTER TABLE ev SPLIT AT (1500)" 2>&1 | grep -q 42P16'
# writers on range 1 ([1000, 1500)) while it moves from shard 1 to shard 0
( for i in $(seq 1 300); do q "UPDATE ev SET v = v + 1 WHERE k = $((1000 + i % 500))" >/dev/null; done ) &
wpid=$!
sleep 0.3
t "range: ALTER TABLE ev MOVE RANGE 1 TO SHARD 0 is queued" 'q "ALTER TABLE ev MOVE RANGE 1 TO SHARD 0" >/dev/null'
t "range: the move ends done" 'wait_moves 30'
wait $wpid
t "range: SHOW RANGES has range 1 on shard 0" '[ "$(q "SHOW RANGES" | sed -n 2p)" = "ev|1|1000|1500|0" ]'
t "range: every write landed (300 increments, 2999 rows)" '[ "$(q "SELECT count(*), sum(v) FROM ev")" = "2999|300" ]'
t "range: rows 1000..1499 are on shard 0 only" \
	'[ "$(sq 0 "SELECT count(*) FROM ev WHERE k >= 1000 AND k < 1500")" = 500 ] && [ "$(sq 1 "SELECT count(*) FROM ev WHERE k >= 1000 AND k < 1500")" = 0 ]'
crash_at router router.rebalance.switched "ALTER TABLE ev MOVE RANGE 2 TO SHARD 2"
t "range: the router crashed after flipping range 2" 'crashed router router.rebalance.switched'
"$bin" cluster start --dir "$cdir" >/dev/null 2>&1
t "range: after restart the move ends done" 'wait_moves 30'
t "range: range 2 on shard 2, rows there only, totals unchanged" \
	'[ "$(q "SHOW RANGES" | sed -n 3p)" = "ev|2|1500|2000|2" ] && [ "$(sq 2 "SELECT count(*) FROM ev WHERE k >= 1500 AND k < 2000")" = 500 ] && [ "$(sq 1 "SELECT count(*) FROM ev")" = 0 ] && [ "$(q "SELECT count(*), sum(v) FROM ev")" = "2999|300" ]'
t "range: the catalog kept the split and the owners across the restart" '[ "$(q "SHOW RANGES" | wc -l)" = 4 ]'
t "range: REMOVE SHARD of a shard holding a range is refused (55000, names the range)" \
	'timeout 10 psql -X -q -v VERBOSITY=verbose -c "ALTER CLUSTER REMOVE SHARD 2" 2>&1 | grep -q "55000.*MOVE RANGE"'

# ---- errors ------------------------------------------------------------------------
t "MOVE BUCKET to a shard that does not exist: 22023" \
	'timeout 10 psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "MOVE BUCKET 5 TO SHARD 9" 2>&1 | grep -q 22023'
t "MOVE BUCKET inside a transaction block: 25001" \
	'printf "BEGIN;\nMOVE BUCKET 5 TO SHARD 1;\n" | timeout 10 psql -X -q -v VERBOSITY=verbose 2>&1 | grep -q 25001'
t "MOVE BUCKET of an out-of-range bucket: 22023" \
	'timeout 10 psql -X -q -v VERBOSITY=verbose -c "MOVE BUCKET 4096 TO SHARD 1" 2>&1 | grep -q 22023'
t "CANCEL REBALANCE with nothing running cancels nothing" \
	'timeout 10 psql -X -q -c "CANCEL REBALANCE" 2>&1 | grep -q "0 bucket move"'
t "ALTER CLUSTER ADD SHARD of a member: 42710" \
	'timeout 10 psql -X -q -v VERBOSITY=verbose -c "ALTER CLUSTER ADD SHARD '\''127.0.0.1:$((PGPORT + 1))'\''" 2>&1 | grep -q 42710'
t "ALTER CLUSTER ADD SHARD of nothing listening: 08006, the catalog unchanged" \
	'timeout 20 psql -X -q -v VERBOSITY=verbose -c "ALTER CLUSTER ADD SHARD '\''127.0.0.1:$((PGPORT + 7))'\''" 2>&1 | grep -q 08006 && [ "$(q "SHOW SHARDS" | wc -l)" = 3 ]'
q "CREATE TABLE dd (id BIGINT PRIMARY KEY, v TEXT) PARTITION BY HASH (id)" >/dev/null
q "INSERT INTO dd VALUES (1, 'old'), (2, 'old')" >/dev/null
q "DROP TABLE dd" >/dev/null
q "CREATE TABLE dd (id BIGINT PRIMARY KEY, v TEXT) PARTITION BY HASH (id)" >/dev/null
t "DROP TABLE removes the rows on the shards (a re-created table is empty)" '[ "$(q "SELECT count(*) FROM dd")" = 0 ]'
"$bin" cluster stop --dir "$cdir" >/dev/null 2>&1
t "no sanitizer report in the logs" '! grep -l "Sanitizer\|runtime error" "$dir"/c*/*.log >/dev/null 2>&1'
echo "1..$n"
exit 0
