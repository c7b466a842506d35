# bench/lib.sh — what the transfer benchmarks share (source it).
#
# transfer_cluster BUILD WORKDIR PORT N MODE: start a 4-shard cluster of
# BUILD in WORKDIR/sl on PORT, load N accounts of balance 1000 into a table
# hash-partitioned over the shards, and write pgbench's transfer script,
# two UPDATEs of random accounts in one transaction, to WORKDIR/t.sql:
# BEGIN ... END (MODE 2pc) or BEGIN SAGA ... COMMIT (MODE saga).
transfer_cluster() {
  local build=$1 work=$2 port=$3 n=$4 mode=$5 k bg=BEGIN en=END
  "$build/shardlite" cluster start --dir "$work/sl" --shards 4 --port "$port" >/dev/null
  psql -X -q -h 127.0.0.1 -p "$port" -U bench -d shardlite \
    -c "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) PARTITION BY HASH (id)"
  for ((k = 0; k < n / 1000; k++)); do
    printf 'INSERT INTO accounts VALUES '
    seq $((k * 1000 + 1)) $((k * 1000 + 1000)) | sed 's/.*/(&, 1000)/' | paste -sd, | tr -d '\n'; echo ';'
  done > "$work/load.sql"
  psql -X -q -h 127.0.0.1 -p "$port" -U bench -d shardlite -v ON_ERROR_STOP=1 -f "$work/load.sql" >/dev/null
  [ "$mode" = saga ] && { bg="BEGIN SAGA"; en=COMMIT; }
  printf '\\set src random(1, %d)\n\\set dst random(1, %d)\n%s;\nUPDATE accounts SET balance = balance - 1 WHERE id = :src;\nUPDATE accounts SET balance = balance + 1 WHERE id = :dst;\n%s;\n' \
    "$n" "$n" "$bg" "$en" > "$work/t.sql"
}
