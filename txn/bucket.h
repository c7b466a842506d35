/*
 * bucket.h — which hash bucket a partition key falls in.  Shared by the
 * router (routing) and the shards (the sl_bucket() SQL function that the
 * rebalancer uses to find a bucket's rows), so both always agree.
 *
 * bucket = murmur3_x86_32(canonical key bytes, seed 0) mod SL_BUCKETS, with
 * canonical bytes: an integer key as int64, 8 bytes big-endian two's
 * complement; a text key its UTF-8 bytes (docs/routing.md, section 1).
 *
 * Invariant: the function and SL_BUCKETS never change for an existing
 * cluster (rows would be in the wrong bucket).
 */
#ifndef SHARDLITE_BUCKET_H
#define SHARDLITE_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#define SL_BUCKETS 4096

/* MurmurHash3 x86_32, seed 0; blocks read little-endian on every machine. */
uint32_t sl_hash32(const void *bytes, size_t len);
uint32_t sl_bucket_of_int(int64_t v);
uint32_t sl_bucket_of_bytes(const void *bytes, size_t len);

#endif
