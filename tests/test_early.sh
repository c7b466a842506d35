#!/usr/bin/env bash
# Early prepare (docs/transactions.md, "Early prepare"): a transaction that
# wrote on shard 0 and sends its first write to shard 1 has shard 0
# PREPAREd at once, naming shard 1 its decider, while the statement runs
# there; COMMIT then only needs shard 1's deciding commit.  Checked here on
# a 3-shard cluster, end to end with psql and psycopg2:
#  - the transaction is listed "prepared early, running" and shard 0 holds
#    it prepared before COMMIT; COMMIT applies it on both;
#  - ROLLBACK, a failing statement and a disconnect after the early prepare
#    release shard 0's row at once and change nothing;
#  - a transaction that goes back to shard 0, or on to shard 2, after the
#    early prepare commits whole (shard 0 is un-prepared, or prepared again
#    naming the new decider);
#  - wound-wait across shards: an older transaction that waits for a row
#    the younger one holds prepared early on shard 0, while the younger one
#    waits for the older one's row on shard 1, wounds it within a second
#    (without the router's wound it waits for the 5 s lock timeout), and
#    the younger one's COMMIT answers 40001;
#  - with SHARDLITE_2PC_EARLY=0 nothing is prepared before COMMIT.
set -u
export LC_ALL=C
bin=${SHARDLITE:?}
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
PY=/usr/bin/python3  # Debian's, where python3-psycopg2 installs
"$PY" -c 'import psycopg2' 2>/dev/null || { echo "1..0 # SKIP $PY has no psycopg2 (apt-get install python3-psycopg2)"; exit 0; }
[ -x "$status" ] || { echo "1..0 # SKIP $status not built (make check builds it)"; exit 0; }
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir early
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=early PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 20 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
bal() { q "SELECT balance FROM accounts WHERE id = $1"; }
# prepared transactions held by shard $1
nprep() { timeout 10 "$status" "127.0.0.1:$((port + 1 + $1))" 2>/dev/null | awk -F'\t' '$2 == "prepared" { c++ } END { print c + 0 }'; }
settled() { [ "$(nprep 0)" = 0 ] && [ "$(nprep 1)" = 0 ] && [ "$(nprep 2)" = 0 ] && [ -z "$(q "SHOW TRANSACTIONS")" ]; }
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }
# a direct autocommit write of row $2 on shard $1 and its undo, in under 2 s:
# nobody holds the row
writable() {
	local t0; t0=$(now_ms)
	[ "$(sq "$1" "UPDATE accounts SET balance = balance + 1 WHERE id = $2" 2>&1)" = "OK 1" ] &&
		[ "$(sq "$1" "UPDATE accounts SET balance = balance - 1 WHERE id = $2" 2>&1)" = "OK 1" ] &&
		[ $(( $(now_ms) - t0 )) -lt 2000 ]
}
# ids the router places on shard $1
ids_on() { q "SELECT id FROM accounts ORDER BY id" | while read -r id; do
	q "EXPLAIN SELECT * FROM accounts WHERE id = $id" | grep -q "^Shard $1 " && echo "$id"; done; }

t "3-shard cluster starts" '"$bin" cluster start --dir "$dir" --shards 3 --port $port >/dev/null'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0)) PARTITION BY HASH (id)" >/dev/null
q "INSERT INTO accounts VALUES $(seq 1 40 | sed 's/.*/(&, 1000)/' | paste -sd,)" >/dev/null
poll 5 settled
read -r -a s0 <<<"$(ids_on 0 | tr '\n' ' ')"
read -r -a s1 <<<"$(ids_on 1 | tr '\n' ' ')"
read -r -a s2 <<<"$(ids_on 2 | tr '\n' ' ')"
t "every shard holds at least 6 accounts (${#s0[@]}, ${#s1[@]}, ${#s2[@]})" \
  '[ "${#s0[@]}" -ge 6 ] && [ "${#s1[@]}" -ge 6 ] && [ "${#s2[@]}" -ge 6 ]'

# ---- the common case, watched from outside between the statements --------------
rm -f "$dir/go"
( printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\n\\! touch %s/mid; while [ ! -e %s/go ]; do sleep 0.05; done\nCOMMIT;\n' \
	"${s0[0]}" "${s1[0]}" "$dir" "$dir" | timeout 30 psql -X -A -t -v ON_ERROR_STOP=1 -f - >"$dir/t1.out" 2>&1 ) &
j=$!
poll 10 '[ -e "$dir/mid" ]'
shown=$(q "SHOW TRANSACTIONS")
diag "SHOW TRANSACTIONS between the statements: $shown"
t "before COMMIT the transaction is listed as prepared early on shards 0,1" \
  'echo "$shown" | grep -q "|prepared early, running|0,1|"'
t "... and shard 0 holds it prepared, shard 1 not" '[ "$(nprep 0)" = 1 ] && [ "$(nprep 1)" = 0 ]'
touch "$dir/go"; wait $j
t "COMMIT is acknowledged" 'grep -q "^COMMIT$" "$dir/t1.out"'
t "the transfer is on both shards" '[ "$(bal "${s0[0]}")" = 990 ] && [ "$(bal "${s1[0]}")" = 1010 ]'
t "nothing in doubt afterwards" 'poll 5 settled'

# ---- ends without a commit ---------------------------------------------------------
out=$(q "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = ${s0[1]}; UPDATE accounts SET balance = balance + 10 WHERE id = ${s1[1]}; ROLLBACK" 2>&1)
t "ROLLBACK after the early prepare: nothing prepared, the rows unchanged" \
  'poll 3 settled && [ "$(bal "${s0[1]}")" = 1000 ] && [ "$(bal "${s1[1]}")" = 1000 ]'
t "... and shard 0's row is writable at once" 'writable 0 "${s0[1]}"'
out=$(printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance - 5000 WHERE id = %s;\nCOMMIT;\n' "${s0[1]}" "${s1[1]}" |
      timeout 20 psql -X -A -t -v VERBOSITY=verbose -f - 2>&1)
t "a statement failing on shard 1 (CHECK) after the early prepare: COMMIT answers ROLLBACK" \
  'echo "$out" | grep -q "23514" && echo "$out" | grep -q "^ROLLBACK$"'
t "... nothing prepared, the rows unchanged, shard 0's row writable" \
  'poll 3 settled && [ "$(bal "${s0[1]}")" = 1000 ] && [ "$(bal "${s1[1]}")" = 1000 ] && writable 0 "${s0[1]}"'
printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\n' "${s0[2]}" "${s1[2]}" |
	timeout 20 psql -X -A -t -f - >/dev/null 2>&1
t "a client gone after the early prepare: released within 3 s, nothing changed" \
  'poll 3 settled && [ "$(bal "${s0[2]}")" = 1000 ] && [ "$(bal "${s1[2]}")" = 1000 ] && writable 0 "${s0[2]}"'

# ---- transactions that go on after the early prepare -------------------------------
out=$(q "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = ${s0[3]}; UPDATE accounts SET balance = balance + 10 WHERE id = ${s1[3]}; SELECT balance FROM accounts WHERE id = ${s0[3]}; UPDATE accounts SET balance = balance - 1 WHERE id = ${s0[3]}; COMMIT")
t "back on shard 0: it reads its own write there ($(echo $out))" 'echo "$out" | grep -qx 990'
t "... and commits whole" '[ "$(bal "${s0[3]}")" = 989 ] && [ "$(bal "${s1[3]}")" = 1010 ] && poll 5 settled'
q "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = ${s0[4]}; UPDATE accounts SET balance = balance + 4 WHERE id = ${s1[4]}; UPDATE accounts SET balance = balance + 6 WHERE id = ${s2[0]}; COMMIT" >/dev/null
t "on to shard 2: it commits on all three shards" \
  '[ "$(bal "${s0[4]}")" = 990 ] && [ "$(bal "${s1[4]}")" = 1004 ] && [ "$(bal "${s2[0]}")" = 1006 ] && poll 5 settled'
q "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = ${s0[5]}; UPDATE accounts SET balance = balance + 10 WHERE id = ${s1[5]}; UPDATE accounts SET balance = balance + 0 WHERE id = ${s2[1]}; ROLLBACK" >/dev/null
t "on to shard 2, then ROLLBACK: nothing changed, nothing held" \
  'poll 3 settled && [ "$(bal "${s0[5]}")" = 1000 ] && [ "$(bal "${s1[5]}")" = 1000 ] && writable 0 "${s0[5]}"'

# a session whose early prepare was wasted lets the next chances pass
rm -f "$dir/go" "$dir/mid"
( printf 'BEGIN;\nUPDATE accounts SET balance = balance - 2 WHERE id = %s;\nUPDATE accounts SET balance = balance + 1 WHERE id = %s;\nUPDATE accounts SET balance = balance + 1 WHERE id = %s;\nCOMMIT;\nBEGIN;\nUPDATE accounts SET balance = balance - 1 WHERE id = %s;\nUPDATE accounts SET balance = balance + 1 WHERE id = %s;\n\\! touch %s/mid; while [ ! -e %s/go ]; do sleep 0.05; done\nCOMMIT;\n' \
	"${s0[4]}" "${s1[4]}" "${s2[0]}" "${s0[4]}" "${s1[4]}" "$dir" "$dir" | timeout 30 psql -X -A -t -v ON_ERROR_STOP=1 -f - >"$dir/t3.out" 2>&1 ) &
j=$!
poll 10 '[ -e "$dir/mid" ]'
t "after a transaction that went on to a third shard, the session's next one is not prepared early" \
  '[ "$(nprep 0)" = 0 ] && ! q "SHOW TRANSACTIONS" | grep -q "prepared early"'
touch "$dir/go"; wait $j
t "... and both commit" '[ "$(grep -c "^COMMIT$" "$dir/t3.out")" = 2 ] && [ "$(bal "${s0[4]}")" = 987 ] && [ "$(bal "${s1[4]}")" = 1006 ] && [ "$(bal "${s2[0]}")" = 1007 ]'

# ---- wound-wait across shards ---------------------------------------------------------
# old: BEGIN; UPDATE x (shard 1)            young: BEGIN; UPDATE y (shard 0);
#                                                  UPDATE x (shard 1): waits for old,
#                                                  y now prepared early on shard 0
# old: UPDATE y (shard 0): waits for young, which waits for old
x=${s1[0]} y=${s0[0]}
x0=$(bal "$x"); y0=$(bal "$y")
cat >"$dir/wound.py" <<'PY'
import sys, threading, time, psycopg2
port, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def conn():
    c = psycopg2.connect(host="127.0.0.1", port=port, user="early", dbname="shardlite", connect_timeout=5)
    c.autocommit = True
    return c
old, young = conn(), conn()
o, yc = old.cursor(), young.cursor()
o.execute("BEGIN")
time.sleep(0.01)
yc.execute("BEGIN")
o.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (x,))
yc.execute("UPDATE accounts SET balance = balance + 100 WHERE id = %s", (y,))
res = {}
def young_second():
    try:
        yc.execute("UPDATE accounts SET balance = balance + 100 WHERE id = %s", (x,))
        res["young_update"] = "ok"
    except psycopg2.Error as e:
        res["young_update"] = e.pgcode
t = threading.Thread(target=young_second)
t.start()
time.sleep(0.5)          # young now waits on shard 1, prepared early on shard 0
t0 = time.time()
o.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (y,))
waited = time.time() - t0
o.execute("COMMIT")
t.join(20)
try:
    yc.execute("COMMIT")
    res["young_commit"] = "ok"
except psycopg2.Error as e:
    res["young_commit"] = e.pgcode
print("old_waited_ms %d young_update %s young_commit %s" % (waited * 1000, res.get("young_update"), res["young_commit"]))
PY
out=$(timeout 60 "$PY" "$dir/wound.py" "$port" "$x" "$y" 2>&1)
diag "wound: $out"
waited=$(echo "$out" | sed -n 's/.*old_waited_ms \([0-9]*\).*/\1/p')
t "the older transaction waiting for the early-prepared row gets it within a second (${waited:-?} ms)" \
  '[ -n "$waited" ] && [ "$waited" -lt 1000 ]'
t "the younger one's COMMIT answers 40001" 'echo "$out" | grep -q "young_commit 40001"'
t "only the older one's writes are there" \
  'poll 5 settled && [ "$(bal "$x")" = $((x0 + 1)) ] && [ "$(bal "$y")" = $((y0 + 1)) ]'
t "the router logged the wound" 'grep -q "prepared early on shard 0, wounded" "$dir/router.log"'

# ---- switched off --------------------------------------------------------------------
"$bin" cluster stop --dir "$dir" >/dev/null
t "the cluster restarts with SHARDLITE_2PC_EARLY=0" \
  'SHARDLITE_2PC_EARLY=0 "$bin" cluster start --dir "$dir" >/dev/null'
rm -f "$dir/go" "$dir/mid"
( printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\n\\! touch %s/mid; while [ ! -e %s/go ]; do sleep 0.05; done\nCOMMIT;\n' \
	"${s0[3]}" "${s1[3]}" "$dir" "$dir" | timeout 30 psql -X -A -t -v ON_ERROR_STOP=1 -f - >"$dir/t2.out" 2>&1 ) &
j=$!
poll 10 '[ -e "$dir/mid" ]'
t "then nothing is prepared before COMMIT" '[ "$(nprep 0)" = 0 ] && [ -z "$(q "SHOW TRANSACTIONS")" ]'
touch "$dir/go"; wait $j
t "... and the transfer commits" 'grep -q "^COMMIT$" "$dir/t2.out" && [ "$(bal "${s0[3]}")" = 979 ]'
"$bin" cluster stop --dir "$dir" >/dev/null
t "a bad SHARDLITE_2PC_EARLY is refused by the router" \
  '! SHARDLITE_2PC_EARLY=yes timeout 5 "$bin" router --listen 127.0.0.1:$port --data "$dir/router" >"$dir/bad.out" 2>&1 && grep -q "SHARDLITE_2PC_EARLY=yes" "$dir/bad.out"'
t "no sanitizer report in the logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
