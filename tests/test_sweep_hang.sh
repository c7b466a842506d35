#!/usr/bin/env bash
# A hung shard does not stop recovery on the others.  3 shards.  Shard 2 is
# frozen (SIGSTOP: it accepts connections and never answers), so the
# router's recovery sweep waits for its Status.  Then shard 0 crashes right
# after making a transfer's PREPARE durable (shard-after-prepare): the
# transfer is rolled back, and the restarted shard 0 holds it prepared
# until a sweep asks its decider (shard 1) and rolls it back.  That sweep
# can only come once the stuck one is abandoned (after 5 s).  Shard 2 is
# thawed (SIGCONT) before the end.  Processes are started by hand here:
# `cluster start` waits up to 10 s for every shard's Ping and then fails,
# which is checked too.
set -u
export LC_ALL=C SHARDLITE_2PC_DECIDER=shard
bin=${SHARDLITE:?}
status=${BUILDDIR:-$(dirname "$bin")}/tests/shard_status
command -v psql >/dev/null || { echo "1..0 # SKIP psql not installed"; exit 0; }
command -v timeout >/dev/null || { echo "1..0 # SKIP timeout not installed"; exit 0; }
[ -x "$status" ] || { echo "1..0 # SKIP $status not built (make check builds it)"; exit 0; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-hang-XXXXXX")
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
frozen=""
cleanup() {
	[ -n "$frozen" ] && kill -CONT "$frozen" 2>/dev/null
	"$bin" cluster stop --dir "$dir" >/dev/null 2>&1; rm -rf "$dir"
}
trap cleanup EXIT
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=op PGDATABASE=shardlite PGCONNECT_TIMEOUT=5
q() { timeout 20 psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
sq() { timeout 15 "$bin" shard-query "127.0.0.1:$((port + 1 + $1))" "$2"; }
bal() { sq "$1" "SELECT balance FROM accounts WHERE id = $2" 2>/dev/null; }
prepared() { timeout 5 "$status" "127.0.0.1:$((port + 1 + $1))" 2>/dev/null | awk -F'\t' '$2 == "prepared" { c++ } END { print c + 0 }'; }
# shard 0 as `cluster start` runs it (same arguments, log and pid file)
shard0() {
	"$bin" shard --id 0 --listen "127.0.0.1:$((port + 1))" --data "$dir/shard-0" >>"$dir/shard-0.log" 2>&1 &
	echo $! > "$dir/shard-0.pid"
	poll 5 '[ -n "$(sq 0 "SELECT 1")" ]'
}

t "3-shard cluster starts" '"$bin" cluster start --dir "$dir" --shards 3 --port $port >/dev/null'
q "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)" >/dev/null
q "INSERT INTO accounts VALUES $(seq 1 60 | sed 's/.*/(&, 1000)/' | paste -sd,)" >/dev/null
poll 5 '[ $(( $(sq 0 "SELECT count(*) FROM accounts") + $(sq 1 "SELECT count(*) FROM accounts") + $(sq 2 "SELECT count(*) FROM accounts") )) = 60 ]'
a=""; b=""
for id in $(seq 1 60); do
	[ -z "$a" ] && [ -n "$(bal 0 $id)" ] && a=$id
	[ -z "$b" ] && [ -n "$(bal 1 $id)" ] && b=$id
done
t "accounts $a on shard 0 and $b on shard 1" '[ -n "$a" ] && [ -n "$b" ]'

frozen=$(cat "$dir/shard-2.pid")
kill -STOP "$frozen"
sleep 1.5  # a sweep is now waiting for shard 2
pid0=$(cat "$dir/shard-0.pid")
kill -9 "$pid0"; poll 5 '! alive $pid0'
SHARDLITE_FAILPOINTS=shard-after-prepare shard0
t "shard 0 restarted with shard-after-prepare armed" 'alive "$(cat "$dir/shard-0.pid")"'
out=$(printf 'BEGIN;\nUPDATE accounts SET balance = balance - 10 WHERE id = %s;\nUPDATE accounts SET balance = balance + 10 WHERE id = %s;\nCOMMIT;\n' "$a" "$b" |
	timeout 20 psql -X -A -t -f - 2>&1)
t "the transfer is rolled back: shard 0 crashed after its PREPARE ($(echo "$out" | tail -1))" \
  '! echo "$out" | grep -qx COMMIT && poll 5 "grep -q \"failpoint shard-after-prepare: crashing\" \"$dir/shard-0.log\""'
t0=$SECONDS
shard0
t "shard 0 is back, holding the transfer prepared" '[ "$(prepared 0)" = 1 ]'
poll 15 '[ "$(prepared 0)" = 0 ]'
t "with shard 2 still frozen, a sweep rolls it back all the same (after $(( SECONDS - t0 )) s)" \
  '[ "$(prepared 0)" = 0 ] && [ "$(bal 0 "$a")" = 1000 ] && [ "$(bal 1 "$b")" = 1000 ]'
t "the router says it abandoned a sweep" 'grep -q "have not answered the recovery sweep" "$dir/router.log"'
t "cluster status reports shard 2 as not answering" 'timeout 20 "$bin" cluster status --dir "$dir" | grep -q "^shard 2 .*not answering"'
cs=$(timeout 30 "$bin" cluster start --dir "$dir" 2>&1); csrc=$?
t "cluster start does not hang on it: it fails naming shard 2 (rc $csrc)" \
  '[ "$csrc" != 0 ] && [ "$csrc" != 124 ] && echo "$cs" | grep -q "shard 2 did not come up"'
kill -CONT "$frozen"; frozen=""
t "shard 2 answers again; nothing is left in doubt" 'poll 10 "[ -z \"\$(q \"SHOW TRANSACTIONS\")\" ]"'
t "the total is unchanged" '[ "$(q "SELECT sum(balance) FROM accounts")" = 60000 ]'
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
