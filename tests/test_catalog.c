/*
 * test_catalog.c — the router's catalog: persistence across reopen, the
 * epoch, the partitioning rules and their SQLSTATEs, the hash (published
 * MurmurHash3 vectors and the canonical key vectors of docs/routing.md),
 * the spread of keys over shards, ranges.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/catalog.h"
#include "router/sql.h"
#include "tests/tap.h"

static sql_stmt_list *parse(const char *sql)
{
	sql_stmt_list *l = NULL;
	sql_error err = {0};
	if (sql_parse(sql, strlen(sql), &l, &err) != 0 || l->n != 1)
		bail("cannot parse %s: %s %s", sql, err.sqlstate, err.message);
	return l;
}

/* Create a table from SQL; returns 0 or -1 with err. */
static int create(catalog *cat, const char *sql, sql_error *err)
{
	sql_stmt_list *l = parse(sql);
	memset(err, 0, sizeof *err);
	int rc = catalog_table_create(cat, &l->items[0]->create_table, err);
	sql_stmt_list_free(l);
	return rc;
}

static int check(catalog *cat, const char *sql, sql_error *err)
{
	sql_stmt_list *l = parse(sql);
	memset(err, 0, sizeof *err);
	int rc = catalog_table_check(cat, &l->items[0]->create_table, err);
	sql_stmt_list_free(l);
	return rc;
}

static wire_value int_value(int64_t i)
{
	wire_value v = {.type = WIRE_INT, .i = i};
	return v;
}

static wire_value text_value(const char *s)
{
	wire_value v = {.type = WIRE_TEXT, .p = s, .len = (uint32_t)strlen(s)};
	return v;
}

static void test_hash_vectors(void)
{
	/* Published MurmurHash3_x86_32 vectors, seed 0. */
	static const struct {
		const char *s;
		size_t n;
		uint32_t h;
	} v[] = {
		{"", 0, 0x00000000u},
		{"\xff\xff\xff\xff", 4, 0x76293b50u},
		{"\x21\x43\x65\x87", 4, 0xf55b516bu},
		{"\x21\x43\x65", 3, 0x7e4a8634u},
		{"R", 1, 0x79b365c1u},
		{"[)<{vbjRgcp", 11, 0x100949f7u},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		ok(catalog_hash(v[i].s, v[i].n) == v[i].h, "murmur3 vector %zu: %08x", i,
		   catalog_hash(v[i].s, v[i].n));

	/* Canonical key bytes: the table in docs/routing.md. */
	catalog *cat = catalog_open(":memory:", (char[128]){0}, 128);
	sql_error err;
	catalog_add_shard(cat, "a:1", &err);
	ok(create(cat, "CREATE TABLE h (id BIGINT PRIMARY KEY) PARTITION BY HASH (id)", &err) == 0,
	   "hash table created");
	ok(create(cat, "CREATE TABLE u (name TEXT PRIMARY KEY) PARTITION BY HASH (name)", &err) == 0,
	   "text hash table created");
	const catalog_table *h = catalog_table_get(cat, "h"), *u = catalog_table_get(cat, "u");
	static const struct {
		int64_t key;
		int bucket;
	} ik[] = {{0, 2812}, {1, 3454}, {42, 2871}, {-1, 1256}, {1000, 4041}, {123456789, 547}};
	for (size_t i = 0; i < sizeof ik / sizeof ik[0]; i++) {
		wire_value k = int_value(ik[i].key);
		ok(catalog_bucket_of(h, &k, &err) == ik[i].bucket, "bigint %lld -> bucket %d",
		   (long long)ik[i].key, ik[i].bucket);
	}
	wire_value k = text_value("alice");
	ok(catalog_bucket_of(u, &k, &err) == 3805, "text 'alice' -> bucket 3805");
	k = text_value("bob");
	ok(catalog_bucket_of(u, &k, &err) == 3058, "text 'bob' -> bucket 3058");
	/* The same key as text or integer lands in the same bucket. */
	k = text_value(" 42 ");
	ok(catalog_bucket_of(h, &k, &err) == 2871, "'42' as text for a bigint key -> bucket 2871");
	k = int_value(7);
	wire_value k2 = text_value("7");
	ok(catalog_bucket_of(u, &k, &err) == catalog_bucket_of(u, &k2, &err),
	   "7 and '7' hash alike for a text key");
	k = text_value("abc");
	ok(catalog_bucket_of(h, &k, &err) == -1 && strcmp(err.sqlstate, "22P02") == 0 &&
		   strstr(err.message, "invalid input syntax for type bigint: \"abc\"") != NULL,
	   "'abc' for a bigint key: 22P02 (%s)", err.message);
	k.type = WIRE_NULL;
	ok(catalog_bucket_of(h, &k, &err) == -1 && strcmp(err.sqlstate, "23502") == 0,
	   "NULL key: 23502");
	k.type = WIRE_REAL;
	k.r = 2.5;
	ok(catalog_bucket_of(h, &k, &err) == -1 && strcmp(err.sqlstate, "22P02") == 0,
	   "2.5 for a bigint key: 22P02");
	k.r = 42.0;
	ok(catalog_bucket_of(h, &k, &err) == 2871, "42.0 for a bigint key -> bucket of 42");
	catalog_close(cat);
}

static void test_spread(void)
{
	char e[128];
	catalog *cat = catalog_open(":memory:", e, sizeof e);
	sql_error err;
	for (int i = 0; i < 4; i++) {
		char addr[32];
		snprintf(addr, sizeof addr, "127.0.0.1:%d", 5434 + i);
		catalog_add_shard(cat, addr, &err);
	}
	create(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY HASH (id)", &err);
	const catalog_table *t = catalog_table_get(cat, "t");
	size_t count[4] = {0};
	for (int64_t id = 1; id <= 10000; id++) {
		wire_value k = int_value(id);
		int b = catalog_bucket_of(t, &k, &err);
		count[catalog_bucket_shard(cat, (uint32_t)b)]++;
	}
	for (int s = 0; s < 4; s++)
		ok(count[s] >= 2125 && count[s] <= 2875, "shard %d holds %zu of 10000 keys (2500 +-15%%)",
		   s, count[s]);
	/* Multiples of 4 (structured keys) spread too. */
	memset(count, 0, sizeof count);
	for (int64_t id = 4; id <= 40000; id += 4) {
		wire_value k = int_value(id);
		count[catalog_bucket_shard(cat, (uint32_t)catalog_bucket_of(t, &k, &err))]++;
	}
	for (int s = 0; s < 4; s++)
		ok(count[s] >= 2125 && count[s] <= 2875, "multiples of 4: shard %d holds %zu", s,
		   count[s]);
	catalog_close(cat);
}

static void test_rules(void)
{
	char e[128];
	catalog *cat = catalog_open(":memory:", e, sizeof e);
	ok(cat != NULL, "catalog_open(\":memory:\")");
	sql_error err;
	catalog_add_shard(cat, "x:1", &err);

	ok(check(cat, "CREATE TABLE t (a BIGINT, b TEXT)", &err) == -1 &&
		   strcmp(err.sqlstate, "42P16") == 0,
	   "no primary key: 42P16 (%s)", err.message);
	ok(check(cat, "CREATE TABLE t (x DOUBLE PRECISION PRIMARY KEY) PARTITION BY HASH (x)",
		 &err) == -1 && strcmp(err.sqlstate, "42804") == 0,
	   "double partition key: 42804 (%s)", err.message);
	ok(check(cat, "CREATE TABLE t (x BOOLEAN PRIMARY KEY) PARTITION BY RANGE (x)", &err) == -1 &&
		   strcmp(err.sqlstate, "42804") == 0,
	   "boolean partition key: 42804");
	ok(check(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT (10, 5)",
		 &err) == -1 && strcmp(err.sqlstate, "42P16") == 0,
	   "descending split points: 42P16 (%s)", err.message);
	ok(check(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT (10, 10)",
		 &err) == -1 && strcmp(err.sqlstate, "42P16") == 0,
	   "equal split points: 42P16");
	ok(check(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT (1.5)",
		 &err) == -1 && strcmp(err.sqlstate, "42804") == 0,
	   "decimal split point for bigint: 42804 (%s)", err.message);
	ok(check(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT ('x')",
		 &err) == -1 && strcmp(err.sqlstate, "22P02") == 0,
	   "'x' split point for bigint: 22P02");
	ok(check(cat, "CREATE TABLE t (n TEXT PRIMARY KEY) PARTITION BY RANGE (n) SPLIT AT (5)",
		 &err) == -1 && strcmp(err.sqlstate, "42804") == 0,
	   "integer split point for text: 42804");
	ok(check(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT (-5, '7', 9)",
		 &err) == 0,
	   "negative, quoted and plain split points accepted");

	/* The partition column outside the primary key, built by hand (the
	 * parser already refuses it with 0A000). */
	sql_stmt_list *l = parse("CREATE TABLE t (a BIGINT PRIMARY KEY, b BIGINT) PARTITION BY HASH (a)");
	sql_create_table def = l->items[0]->create_table;
	def.partition_column = "b";
	def.partition_index = 1;
	ok(catalog_table_check(cat, &def, &err) == -1 && strcmp(err.sqlstate, "42P16") == 0,
	   "partition column outside the primary key: 42P16 (%s)", err.message);
	def.partition_column = "nope";
	def.partition_index = -1;
	ok(catalog_table_check(cat, &def, &err) == -1 && strcmp(err.sqlstate, "42703") == 0,
	   "unknown partition column: 42703");
	sql_stmt_list_free(l);

	uint64_t e0 = catalog_epoch(cat);
	ok(create(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY)", &err) == 0, "reference table created");
	ok(catalog_epoch(cat) == e0 + 1, "epoch +1 on create");
	ok(create(cat, "CREATE TABLE t (id BIGINT PRIMARY KEY)", &err) == -1 &&
		   strcmp(err.sqlstate, "42P07") == 0,
	   "existing table: 42P07");
	ok(create(cat, "CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY)", &err) == 0 &&
		   catalog_epoch(cat) == e0 + 1,
	   "IF NOT EXISTS on an existing table: no change, epoch unchanged");
	ok(catalog_table_drop(cat, "nope", &err) == -1 && strcmp(err.sqlstate, "42P01") == 0,
	   "drop unknown: 42P01");
	ok(catalog_table_drop(cat, "t", &err) == 0 && catalog_table_get(cat, "t") == NULL &&
		   catalog_epoch(cat) == e0 + 2,
	   "drop: gone, epoch +1");
	ok(catalog_add_shard(cat, "x:1", &err) == -1, "adding the same address twice fails");
	catalog_close(cat);
}

static void test_ranges(void)
{
	char e[128];
	catalog *cat = catalog_open(":memory:", e, sizeof e);
	sql_error err;
	for (int i = 0; i < 3; i++) {
		char a[16];
		snprintf(a, sizeof a, "s:%d", i);
		catalog_add_shard(cat, a, &err);
	}
	create(cat, "CREATE TABLE r (id BIGINT PRIMARY KEY) PARTITION BY RANGE (id) SPLIT AT (10, 20, 30)",
	       &err);
	create(cat, "CREATE TABLE n (k TEXT PRIMARY KEY) PARTITION BY RANGE (k) SPLIT AT ('g', 'n')",
	       &err);
	const catalog_table *r = catalog_table_get(cat, "r"), *n = catalog_table_get(cat, "n");
	static const struct {
		int64_t key;
		size_t range;
	} v[] = {{-100, 0}, {9, 0}, {10, 1}, {19, 1}, {20, 2}, {29, 2}, {30, 3}, {INT64_MAX, 3}};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		wire_value k = int_value(v[i].key);
		ok(catalog_range_of(r, &k) == v[i].range, "key %lld in range %zu",
		   (long long)v[i].key, v[i].range);
	}
	ok(catalog_range_shard(cat, NULL, 3) == 0, "range 3 of 3 shards -> shard 0");
	wire_value k = text_value("apple");
	ok(catalog_range_of(n, &k) == 0, "'apple' < 'g'");
	k = text_value("g");
	ok(catalog_range_of(n, &k) == 1, "'g' starts range 1");
	k = text_value("zebra");
	ok(catalog_range_of(n, &k) == 2, "'zebra' in the last range");
	catalog_close(cat);
}

static void test_persistence(void)
{
	char dir[] = "/tmp/test_catalog.XXXXXX";
	if (mkdtemp(dir) == NULL)
		bail("mkdtemp");
	char path[128];
	snprintf(path, sizeof path, "%s/catalog.db", dir);
	char e[256];
	sql_error err;

	catalog *cat = catalog_open(path, e, sizeof e);
	ok(cat != NULL, "open a new catalog file (%s)", cat ? "" : e);
	uint64_t e0 = catalog_epoch(cat);
	ok(e0 >= 1, "a new catalog starts at epoch %llu", (unsigned long long)e0);
	for (int i = 0; i < 4; i++) {
		char a[32];
		snprintf(a, sizeof a, "127.0.0.1:%d", 6000 + i);
		ok(catalog_add_shard(cat, a, &err) == i, "shard %d added", i);
	}
	ok(catalog_epoch(cat) == e0 + 4, "epoch +1 per added shard");
	bool even = true;
	for (uint32_t b = 0; b < CATALOG_BUCKETS; b++)
		even &= catalog_bucket_shard(cat, b) == b % 4;
	ok(even, "before any table, bucket b -> shard b %% 4");
	ok(create(cat,
		  "CREATE TABLE acc (id BIGINT PRIMARY KEY, owner VARCHAR(20) NOT NULL, bal NUMERIC(10,2)) "
		  "PARTITION BY HASH (id)",
		  &err) == 0,
	   "hash table created");
	ok(create(cat,
		  "CREATE TABLE ev (day TEXT, n INTEGER, PRIMARY KEY (day, n)) PARTITION BY RANGE (day) "
		  "SPLIT AT ('2024-01-01', '2025-01-01')",
		  &err) == 0,
	   "range table with a composite key created");
	ok(create(cat, "CREATE TABLE cur (code CHAR(3) PRIMARY KEY, name TEXT)", &err) == 0,
	   "reference table created");
	ok(create(cat, "CREATE TABLE gone (id INT PRIMARY KEY)", &err) == 0 &&
		   catalog_table_drop(cat, "gone", &err) == 0,
	   "a table created and dropped");
	ok(catalog_add_shard(cat, "127.0.0.1:6004", &err) == 4, "a fifth shard after tables exist");
	even = true;
	for (uint32_t b = 0; b < CATALOG_BUCKETS; b++)
		even &= catalog_bucket_shard(cat, b) == b % 4;
	ok(even, "adding a shard after tables exist moves no bucket");
	uint64_t epoch = catalog_epoch(cat);
	catalog_close(cat);

	cat = catalog_open(path, e, sizeof e);
	ok(cat != NULL, "reopen (%s)", cat ? "" : e);
	ok(catalog_epoch(cat) == epoch, "epoch %llu survives", (unsigned long long)epoch);
	ok(catalog_nshards(cat) == 5 && strcmp(catalog_shard_addr(cat, 4), "127.0.0.1:6004") == 0,
	   "shards survive in order");
	even = true;
	for (uint32_t b = 0; b < CATALOG_BUCKETS; b++)
		even &= catalog_bucket_shard(cat, b) == b % 4;
	ok(even, "bucket map survives");
	ok(catalog_ntables(cat) == 3 && catalog_table_get(cat, "gone") == NULL, "3 tables, dropped one gone");
	const catalog_table *t = catalog_table_get(cat, "acc");
	ok(t && t->partition == SQL_PARTITION_HASH && t->partition_col == 0 && t->ncols == 3,
	   "acc: hash on column 0");
	ok(t && t->cols[0].oid == 20 && t->cols[1].oid == 1043 && t->cols[2].oid == 1700,
	   "acc: column OIDs int8, varchar, numeric");
	ok(t && t->cols[0].primary_key && t->cols[0].not_null && t->cols[1].not_null &&
		   !t->cols[2].not_null && t->cols[1].type.length == 20 && t->cols[2].type.scale == 2,
	   "acc: keys, NOT NULL, type modifiers");
	t = catalog_table_get(cat, "ev");
	ok(t && t->partition == SQL_PARTITION_RANGE && t->nsplits == 2 &&
		   t->splits[0].type == WIRE_TEXT && strcmp(t->splits[1].p, "2025-01-01") == 0,
	   "ev: range splits survive");
	ok(t && t->cols[0].primary_key && t->cols[1].primary_key, "ev: composite key survives");
	t = catalog_table_get(cat, "cur");
	ok(t && t->partition == SQL_PARTITION_NONE && t->partition_col == -1 && t->cols[0].oid == 1042,
	   "cur: reference table, bpchar");
	ok(catalog_table_drop(cat, "cur", &err) == 0 && catalog_epoch(cat) == epoch + 1,
	   "changes continue after reopen");
	catalog_close(cat);

	/* A damaged file is refused, not half-loaded. */
	sqlite3 *db;
	ok(sqlite3_open(path, &db) == SQLITE_OK &&
		   sqlite3_exec(db, "DELETE FROM sl_buckets WHERE bucket = 7", NULL, NULL, NULL) ==
			   SQLITE_OK,
	   "damage the bucket map");
	sqlite3_close(db);
	cat = catalog_open(path, e, sizeof e);
	ok(cat == NULL && strstr(e, "bucket") != NULL, "missing bucket detected: %s", e);
	catalog_close(cat);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}

int main(void)
{
	test_hash_vectors();
	test_spread();
	test_rules();
	test_ranges();
	test_persistence();
	return plan_done();
}
