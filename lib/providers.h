/* providers.h — the live providers of provbus-consumer(1) and the verdict of each
 * event. Pure: no I/O, time passed in. The daemon and `provbus-audit
 * replay` both use it.
 *
 * A provider is (federation, region, node, service, key). Retire leaves a
 * tombstone with its seq, so a late older provides cannot bring it back.
 * The last seq per (federation, node, service) decides `stale`. */
#ifndef PB_PROVIDERS_H
#define PB_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>

#include "pbtime.h"

#include "config.h"
#include "event.h"
#include "manifest.h"
#include "vocab.h"

/* enum pb_verdict, pb_verdict_name, pb_verdict_parse: vocab.h */

struct pb_provider {
	char federation[PB_IDENT_MAX + 1];
	char region[PB_IDENT_MAX + 1];
	char node[PB_IDENT_MAX + 1];
	char service[PB_SERVICE_MAX + 1];
	char key[PB_KEY_MAX + 1];
	char *value;		/* NULL for a tombstone */
	int public;
	int64_t seq;
	int64_t expires_at;	/* PB_TIME_NEVER: no lease */
	int64_t updated_at;
	int tombstone;
};

/* What this node accepts: required keys, accepted regions ("*" = all),
 * its federation. Pointers are borrowed. */
struct pb_filter {
	const char *federation;
	const char *const *keys;	/* sorted, de-duplicated */
	size_t n_keys;
	const char *const *regions;
	size_t n_regions;
};

struct pb_providers;

struct pb_providers *pb_providers_new(void);
void pb_providers_free(struct pb_providers *p);

/* Raises the last seq known for (fed, node, service) to at least seq (the
 * highest the audit log holds: after a restart, and once old rows are
 * pruned, an older announcement is then stale, not applied again). 0, or
 * -1 when out of memory. */
int pb_providers_seq_floor(struct pb_providers *p, const char *fed, const char *node,
			   const char *service, int64_t seq);

/* Judges ev received at now and, when applied, updates the state.
 * seen_before: its id was seen before (the caller's audit db knows).
 * Order: duplicate, stale, foreign, applied. *changed (may be NULL) is
 * set to 1 when the live set changed. */
enum pb_verdict pb_providers_apply(struct pb_providers *p, const struct pb_event *ev,
				   int seen_before, const struct pb_filter *f, int64_t now,
				   int *changed);

/* Inserts a provider as stored (state restore); copies it. A later put
 * of the same provider replaces it. O(1): the puts are sorted in at once
 * by the next call of any other function (O(n log n) for a restore of n,
 * not O(n) each). 0, or -1 (ENOMEM). */
int pb_providers_put(struct pb_providers *p, const struct pb_provider *pv);

/* Removes every lease that ran out at or before now; for each, calls
 * cb(pv, ctx) before removing it (pv valid during the call). Returns the
 * number removed. An expired provider leaves no tombstone. */
size_t pb_providers_expire(struct pb_providers *p, int64_t now,
			   void (*cb)(const struct pb_provider *pv, void *ctx), void *ctx);
/* The earliest lease end, or PB_TIME_NEVER. */
int64_t pb_providers_next_expiry(const struct pb_providers *p);

size_t pb_providers_count(const struct pb_providers *p);	/* tombstones included */
const struct pb_provider *pb_providers_at(const struct pb_providers *p, size_t i);

/* One required env var: env = {key}, or env = literal. */
struct pb_want {
	const char *env;
	const char *key;	/* NULL for a literal */
	const char *literal;
};

/* Before ev is applied (it will be, and it changes its provider: the
 * caller knows once pb_providers_apply returns applied with *changed):
 * whether that changes the joined live values of ev's key, which depend
 * only on the set of distinct values of its live providers. 1 yes, 0 no,
 * -1 when the key goes from no live provider to some or back (then the
 * statics decide: compute the values), -2 when the key has more than
 * max_providers providers (tombstones included; SIZE_MAX: no limit).
 * Exact, and O(1) in the key's k providers: p keeps a count of live
 * providers per (key, value) and per key for the last (f's regions,
 * public_only) asked, up to date through every apply, put and expiry;
 * asking with other regions or public_only builds it again (O(n)). */
int pb_providers_value_change(struct pb_providers *p, const struct pb_event *ev,
			      const struct pb_filter *f, int public_only, size_t max_providers);
/* The same answer by a scan of the key's providers (O(k)): the
 * reference the tests compare with, and the fallback when the index
 * cannot be allocated. */
int pb_providers_value_change_scan(const struct pb_providers *p, const struct pb_event *ev,
				   const struct pb_filter *f, int public_only, size_t max_providers);

/* The values of provbus-consumer(1): for each want, the live (non-tombstone)
 * providers of its key in the accepted regions (public only when
 * public_only), values de-duplicated, sorted (strcmp) and joined with
 * ","; none: the static value of the key; neither: left out. *out is
 * sorted by env; free with pb_kv_free_array. Returns 0 or -1 (ENOMEM). */
int pb_providers_values(const struct pb_providers *p, const struct pb_want *wants, size_t n_wants,
			const struct pb_filter *f, const struct pb_static *statics,
			size_t n_statics, int public_only, struct pb_kv **out, size_t *n_out);

/* 1 when the two sorted kv arrays are equal. */
int pb_kv_equal(const struct pb_kv *a, size_t na, const struct pb_kv *b, size_t nb);

#endif
