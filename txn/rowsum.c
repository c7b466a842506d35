/*
 * rowsum.c — the row hash of rowsum.h (FNV-1a 64).
 */
#include "txn/rowsum.h"

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t k = 0; k < n; k++) {
		h ^= c[k];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t rowsum_start(void)
{
	return FNV_OFFSET;
}

uint64_t rowsum_value(uint64_t h, int type, int64_t i, double r, const void *p, uint32_t n)
{
	unsigned char tag = (unsigned char)type;
	h = fnv(h, &tag, 1);
	switch (type) {
	case ROWSUM_INTEGER:
		return fnv(h, &i, sizeof i);
	case ROWSUM_REAL:
		return fnv(h, &r, sizeof r);
	case ROWSUM_TEXT:
	case ROWSUM_BLOB:
		h = fnv(h, &n, sizeof n);
		return n ? fnv(h, p, n) : h;
	default:
		return h;
	}
}
