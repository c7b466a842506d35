#!/usr/bin/env bash
# Python clients against a real 2-shard cluster: psycopg2 (parameters
# interpolated by the client, simple protocol, implicit BEGIN) and psycopg 3
# (server-side parameters over the extended protocol, pipelined
# executemany, prepared statements).  Each check is a short Python snippet
# run by Debian's /usr/bin/python3 (python3-psycopg2, python3-psycopg): connect,
# create, insert with parameters, select with the Python types back, a
# transaction, an error with its pgcode/sqlstate, autocommit mode.
set -u
bin=${SHARDLITE:?}
PY=/usr/bin/python3
have() { [ -x "$PY" ] && "$PY" -c "import $1" 2>/dev/null; }
have_pg2=0; have_pg3=0
have psycopg2 && have_pg2=1
have psycopg && have_pg3=1
if [ $have_pg2 = 0 ] && [ $have_pg3 = 0 ]; then
  echo "1..0 # SKIP $PY has neither psycopg2 nor psycopg (apt-get install python3-psycopg2 python3-psycopg)"; exit 0
fi
source "${SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
source "${SRCDIR:-$(dirname "$0")/..}/tests/tap.sh"
cluster_dir psycopg
port=$(pick_ports 8) || { echo "Bail out! no free ports"; exit 1; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
export DSN="host=127.0.0.1 port=$port user=py dbname=shardlite connect_timeout=5"

# py DESCRIPTION MODULE CODE: CODE runs after `import MODULE`, with `dsn`
# set; the check passes if it exits 0 (assert says what went wrong).
# With TODO=reason set, it is a known bug: TAP "# TODO" (an expected
# failure; once fixed it shows as XPASS and the TODO must go).
py() {
  local desc=$1 mod=$2 code=$3 out todo=""
  [ -n "${TODO:-}" ] && todo=" # TODO $TODO"
  n=$((n + 1))
  if out=$(printf 'import os, sys, decimal\nimport %s\ndsn = os.environ["DSN"]\n%s\n' "$mod" "$code" | "$PY" - 2>&1); then
    echo "ok $n - $desc$todo"
  else
    echo "not ok $n - $desc$todo"; [ -n "$todo" ] || failed=1
    printf '%s\n' "$out" | tail -n 8 | sed 's/^/#   /'
  fi
}

t "cluster starts" '"$bin" cluster start --dir "$dir" --shards 2 --port $port >/dev/null'

# ---- psycopg2 ---------------------------------------------------------------
if [ $have_pg2 = 1 ]; then
py "psycopg2: connect and SELECT 1" psycopg2 '
c = psycopg2.connect(dsn)
assert c.server_version >= 150000, c.server_version
cur = c.cursor(); cur.execute("SELECT 1"); assert cur.fetchone() == (1,)
c.close()'

py "psycopg2: CREATE TABLE (autocommit)" psycopg2 '
c = psycopg2.connect(dsn); c.autocommit = True
c.cursor().execute("CREATE TABLE p2 (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(10,2), "
                   "flag BOOLEAN, score DOUBLE PRECISION, data BYTEA) PARTITION BY HASH (id)")'

py "psycopg2: INSERT with parameters (executemany, every type, None), commit" psycopg2 '
c = psycopg2.connect(dsn); cur = c.cursor()
rows = [(i, "name %d it'"'"'s" % i, decimal.Decimal("%d.25" % i), i % 2 == 0, i / 4, bytes([i, 0, 255]))
        for i in range(1, 21)]
cur.executemany("INSERT INTO p2 (id, name, amount, flag, score, data) VALUES (%s, %s, %s, %s, %s, %s)", rows)
cur.execute("INSERT INTO p2 VALUES (%s, %s, %s, %s, %s, %s)", (99, None, None, None, None, None))
c.commit()
cur.execute("SELECT count(*) FROM p2"); assert cur.fetchone()[0] == 21'

py "psycopg2: SELECT gives Python types back (int, str, Decimal, bool, float, None)" psycopg2 '
c = psycopg2.connect(dsn); cur = c.cursor()
cur.execute("SELECT id, name, amount, flag, score, data FROM p2 WHERE id = %s", (6,))
r = cur.fetchone()
assert r[0] == 6 and r[1] == "name 6 it'"'"'s", r
assert r[2] == decimal.Decimal("6.25") and isinstance(r[2], decimal.Decimal), r
assert r[3] is True and r[4] == 1.5, r
assert isinstance(r[5], memoryview), type(r[5])
cur.execute("SELECT name, amount FROM p2 WHERE id = %s", (99,)); assert cur.fetchone() == (None, None)
assert [d.name for d in cur.description] == ["name", "amount"]'

# psycopg2 sends bytes as the literal '"'"'\x0600ff'"'"'::bytea, which the
# router decodes like PostgreSQL's bytea input (3 bytes, not 8 characters).
py "psycopg2: bytes round-trip through a bytea literal" psycopg2 '
c = psycopg2.connect(dsn); cur = c.cursor()
cur.execute("SELECT data FROM p2 WHERE id = %s", (6,))
r = bytes(cur.fetchone()[0]); assert r == bytes([6, 0, 255]), r'

py "psycopg2: aggregates and ORDER BY across shards" psycopg2 '
c = psycopg2.connect(dsn); cur = c.cursor()
cur.execute("SELECT count(*), sum(amount), max(id) FROM p2 WHERE id BETWEEN %s AND %s", (1, 20))
cnt, total, mx = cur.fetchone()
assert cnt == 20 and mx == 20 and total == decimal.Decimal("215.00"), (cnt, total, mx)
cur.execute("SELECT id FROM p2 ORDER BY id DESC LIMIT 3"); assert cur.fetchall() == [(99,), (20,), (19,)]'

py "psycopg2: a transaction across shards commits; a rolled-back one leaves nothing" psycopg2 '
c = psycopg2.connect(dsn); cur = c.cursor()
cur.execute("UPDATE p2 SET amount = amount - 1 WHERE id = %s", (1,))
cur.execute("UPDATE p2 SET amount = amount + 1 WHERE id = %s", (2,))
assert c.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
c.commit()
cur.execute("UPDATE p2 SET amount = 0 WHERE id = %s", (3,)); c.rollback()
cur.execute("SELECT id, amount FROM p2 WHERE id IN (1, 2, 3) ORDER BY id")
r = cur.fetchall()
assert r == [(1, decimal.Decimal("0.25")), (2, decimal.Decimal("3.25")), (3, decimal.Decimal("3.25"))], r
with c:
    cur.execute("UPDATE p2 SET name = %s WHERE id = %s", ("renamed", 4))
cur.execute("SELECT name FROM p2 WHERE id = 4"); assert cur.fetchone() == ("renamed",)'

py "psycopg2: errors carry pgcode (23505, 42P01, 42601, 25P02); the connection goes on" psycopg2 '
import psycopg2.errors as E
c = psycopg2.connect(dsn); cur = c.cursor()
try:
    cur.execute("INSERT INTO p2 (id) VALUES (%s)", (1,)); raise SystemExit("no error")
except E.UniqueViolation as e:
    assert e.pgcode == "23505", e.pgcode
try:
    cur.execute("SELECT 1"); raise SystemExit("no error")
except E.InFailedSqlTransaction as e:
    assert e.pgcode == "25P02", e.pgcode
c.rollback()
for sql, code in (("SELECT * FROM nope", "42P01"), ("SELEC 1", "42601")):
    try:
        cur.execute(sql); raise SystemExit("no error for " + sql)
    except psycopg2.Error as e:
        assert e.pgcode == code, (sql, e.pgcode)
        assert e.diag.message_primary, e.diag.message_primary
    c.rollback()
cur.execute("SELECT count(*) FROM p2"); assert cur.fetchone()[0] == 21'

py "psycopg2: autocommit mode: each statement visible at once to another connection" psycopg2 '
a = psycopg2.connect(dsn); a.autocommit = True
b = psycopg2.connect(dsn); b.autocommit = True
a.cursor().execute("INSERT INTO p2 (id, name) VALUES (%s, %s)", (50, "auto"))
assert a.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
cb = b.cursor(); cb.execute("SELECT name FROM p2 WHERE id = 50"); assert cb.fetchone() == ("auto",)
try:
    a.cursor().execute("INSERT INTO p2 (id, name) VALUES (%s, %s)", (50, "again")); raise SystemExit("no error")
except psycopg2.errors.UniqueViolation:
    pass
a.cursor().execute("DELETE FROM p2 WHERE id = 50")
cb.execute("SELECT count(*) FROM p2 WHERE id = 50"); assert cb.fetchone()[0] == 0'
else
  skip "psycopg2 checks" "psycopg2 is not installed for $PY"
fi

# ---- psycopg 3 --------------------------------------------------------------
if [ $have_pg3 = 1 ]; then
py "psycopg 3: connect and SELECT with a server-side parameter" psycopg '
with psycopg.connect(dsn) as c:
    assert c.info.server_version >= 150000, c.info.server_version
    assert c.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)'

py "psycopg 3: CREATE TABLE (autocommit)" psycopg '
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("CREATE TABLE p3 (id BIGINT PRIMARY KEY, name TEXT, amount NUMERIC(10,2), "
              "flag BOOLEAN, score DOUBLE PRECISION, data BYTEA, n INT) PARTITION BY HASH (id)")'

py "psycopg 3: INSERT with parameters (executemany, every type, None), commit" psycopg '
with psycopg.connect(dsn) as c:
    cur = c.cursor()
    rows = [(i, "név %d" % i, decimal.Decimal("%d.50" % i), i % 3 == 0, i * 0.5, bytes([i, 0, 10, 255]), i)
            for i in range(1, 31)]
    cur.executemany("INSERT INTO p3 VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    cur.execute("INSERT INTO p3 VALUES (%s, %s, %s, %s, %s, %s, %s)", (99, None, None, None, None, None, None))
    c.commit()
    assert c.execute("SELECT count(*) FROM p3").fetchone() == (31,)'

py "psycopg 3: SELECT gives Python types back (int, str, Decimal, bool, float, bytes, None)" psycopg '
with psycopg.connect(dsn) as c:
    r = c.execute("SELECT id, name, amount, flag, score, data, n FROM p3 WHERE id = %s", (6,)).fetchone()
    assert r == (6, "név 6", decimal.Decimal("6.50"), True, 3.0, bytes([6, 0, 10, 255]), 6), r
    r = c.execute("SELECT name, amount, data FROM p3 WHERE id = %s", (99,)).fetchone()
    assert r == (None, None, None), r
    r = c.execute("SELECT count(*) FROM p3 WHERE flag = %s AND name LIKE %s AND score > %s",
                  (True, "név%", 2.0)).fetchone()
    assert r == (9,), r'

py "psycopg 3: prepared statements (prepare=True and after the auto-prepare threshold)" psycopg '
with psycopg.connect(dsn) as c:
    for i in range(1, 11):
        r = c.execute("SELECT n FROM p3 WHERE id = %s", (i,), prepare=True).fetchone()
        assert r == (i,), (i, r)
    for i in range(1, 11):
        r = c.execute("SELECT amount FROM p3 WHERE id = %s", (i,)).fetchone()
        assert r == (decimal.Decimal("%d.50" % i),), (i, r)
    c.commit()'

py "psycopg 3: a transaction block commits; an exception in one rolls back" psycopg '
with psycopg.connect(dsn, autocommit=True) as c:
    with c.transaction():
        c.execute("UPDATE p3 SET amount = amount - %s WHERE id = %s", (1, 1))
        c.execute("UPDATE p3 SET amount = amount + %s WHERE id = %s", (1, 2))
    try:
        with c.transaction():
            c.execute("UPDATE p3 SET amount = 0 WHERE id = %s", (3,))
            raise KeyError("boom")
    except KeyError:
        pass
    r = c.execute("SELECT id, amount FROM p3 WHERE id IN (1, 2, 3) ORDER BY id").fetchall()
    assert r == [(1, decimal.Decimal("0.50")), (2, decimal.Decimal("3.50")), (3, decimal.Decimal("3.50"))], r
    assert c.execute("SELECT sum(amount) FROM p3").fetchone() == (decimal.Decimal("480.00"),)'

py "psycopg 3: errors carry sqlstate (23505, 23502, 42703, 25P02); the connection goes on" psycopg '
import psycopg.errors as E
with psycopg.connect(dsn) as c:
    try:
        c.execute("INSERT INTO p3 (id) VALUES (%s)", (1,)); raise SystemExit("no error")
    except E.UniqueViolation as e:
        assert e.sqlstate == "23505" and e.diag.message_primary, e.sqlstate
    try:
        c.execute("SELECT 1"); raise SystemExit("no error")
    except E.InFailedSqlTransaction as e:
        assert e.sqlstate == "25P02", e.sqlstate
    c.rollback()
    for sql, args, code in (("INSERT INTO p3 (id) VALUES (%s)", (None,), "23502"),
                            ("SELECT nope FROM p3 WHERE id = %s", (1,), "42703")):
        try:
            c.execute(sql, args); raise SystemExit("no error for " + sql)
        except psycopg.Error as e:
            assert e.sqlstate == code, (sql, e.sqlstate, str(e))
        c.rollback()
    assert c.execute("SELECT count(*) FROM p3").fetchone() == (31,)'

py "psycopg 3: autocommit mode: each statement visible at once to another connection" psycopg '
with psycopg.connect(dsn, autocommit=True) as a, psycopg.connect(dsn, autocommit=True) as b:
    a.execute("INSERT INTO p3 (id, name) VALUES (%s, %s)", (50, "auto"))
    assert a.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert b.execute("SELECT name FROM p3 WHERE id = 50").fetchone() == ("auto",)
    a.execute("DELETE FROM p3 WHERE id = %s", (50,))
    assert b.execute("SELECT count(*) FROM p3 WHERE id = 50").fetchone() == (0,)'

py "psycopg 3: binary results work or are refused cleanly (0A000), connection kept" psycopg '
with psycopg.connect(dsn, autocommit=True) as c:
    try:
        r = c.cursor(binary=True).execute("SELECT id, n FROM p3 WHERE id = %s", (7,)).fetchone()
        assert r == (7, 7), r
    except psycopg.errors.FeatureNotSupported as e:
        assert e.sqlstate == "0A000", e.sqlstate
    assert c.execute("SELECT 1").fetchone() == (1,)'
else
  skip "psycopg 3 checks" "psycopg is not installed for $PY"
fi

# a clean stop lets LeakSanitizer speak in sanitizer builds
t "cluster stops cleanly" '"$bin" cluster stop --dir "$dir" >/dev/null'
t "no sanitizer report in the router's and shards' logs" '! grep -l "Sanitizer\|runtime error" "$dir"/*.log'
echo "1..$n"
exit $failed
