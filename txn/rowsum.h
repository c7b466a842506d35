/*
 * rowsum.h — an order-independent checksum of a set of rows, computed the
 * same way by the shards (the sl_checksum() SQL aggregate, over SQLite
 * values) and by the router (over wire values), so a bucket move can
 * compare the rows it read from the source with the copy on the target
 * without reading the copy back (docs/rebalance.md).
 *
 * row hash  = FNV-1a 64 over the row's values in column order, each value
 *             as one type byte (SQLite's: 1 INTEGER, 2 REAL, 3 TEXT,
 *             4 BLOB, 5 NULL) then, for INTEGER an int64 and for REAL a
 *             double (host byte order: both sides run on one machine kind),
 *             for TEXT and BLOB a uint32 length then the bytes;
 * checksum  = the sum of the row hashes mod 2^64.
 */
#ifndef SHARDLITE_ROWSUM_H
#define SHARDLITE_ROWSUM_H

#include <stddef.h>
#include <stdint.h>

#define ROWSUM_INTEGER 1
#define ROWSUM_REAL 2
#define ROWSUM_TEXT 3
#define ROWSUM_BLOB 4
#define ROWSUM_NULL 5

/* The hash of a row before its first value. */
uint64_t rowsum_start(void);
/* h with one more value: i for INTEGER, r for REAL, p/n for TEXT and BLOB. */
uint64_t rowsum_value(uint64_t h, int type, int64_t i, double r, const void *p, uint32_t n);

#endif
