/* test_providers.c — verdicts and values of provbus-consumer(1).
 *
 * The verdict tests are scripts: events applied in order to one set of
 * providers, each with the verdict and "live set changed" expected. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers.h"
#include "suite_main.h"

#define NEVER PB_TIME_NEVER

static const char *const keys[] = { "API_URL", "DB_URL" };	/* sorted */
static const char *const us_only[] = { "us-east-1" };
static const char *const all_regions[] = { "*" };
static const char *const two_regions[] = { "eu-west-1", "us-east-1" };

static const struct pb_filter filter_us = { "sg", keys, 2, us_only, 1 };
static const struct pb_filter filter_all = { "sg", keys, 2, all_regions, 1 };

static struct pb_event make_event(enum pb_kind kind, const char *fed, const char *region,
				  const char *node, const char *service, const char *key,
				  const char *value, int public, int64_t seq, int64_t ttl_s)
{
	struct pb_event ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.id, sizeof(ev.id), "00000000-0000-4000-8000-%012lld", (long long)seq);
	ev.kind = kind;
	snprintf(ev.federation, sizeof(ev.federation), "%s", fed);
	snprintf(ev.region, sizeof(ev.region), "%s", region);
	snprintf(ev.node, sizeof(ev.node), "%s", node);
	snprintf(ev.service, sizeof(ev.service), "%s", service);
	snprintf(ev.key, sizeof(ev.key), "%s", key);
	if (kind == PB_KIND_PROVIDES) {
		ev.has_value = 1;
		snprintf(ev.value, sizeof(ev.value), "%s", value);
		ev.value_len = strlen(ev.value);
	}
	ev.public = public;
	ev.seq = seq;
	ev.ttl_s = ttl_s;
	snprintf(ev.ts, sizeof(ev.ts), "2026-11-22T03:00:00.000Z");
	return ev;
}

/* ---- verdict scripts */

struct vstep {
	int retire;
	const char *fed, *region, *node, *service, *key, *value;
	int public;
	int64_t seq;
	int seen;
	enum pb_verdict expect;
	int changed;
};

#define PROV(fed, region, node, svc, key, value, pub, seq, seen, v, ch) \
	{ 0, fed, region, node, svc, key, value, pub, seq, seen, PB_VERDICT_##v, ch }
#define RETIRE(fed, region, node, svc, key, seq, seen, v, ch) \
	{ 1, fed, region, node, svc, key, NULL, 0, seq, seen, PB_VERDICT_##v, ch }
#define VEND { -1 }

struct vcase {
	const char *name;
	const struct pb_filter *filter;
	struct vstep steps[24];
	size_t count;		/* providers kept at the end, tombstones included */
};

static const struct vcase vcases[] = {
	{ "each verdict", &filter_us, {
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://a", 0, 5, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://a", 0, 5, 1, DUPLICATE, 0),
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://a", 0, 5, 0, APPLIED, 0),
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://old", 0, 4, 0, STALE, 0),
		PROV("sg", "us-east-1", "api-1", "api", "OTHER_URL", "x", 0, 6, 0, FOREIGN, 0),
		PROV("sg", "eu-west-1", "api-2", "api", "API_URL", "http://eu", 0, 1, 0, FOREIGN, 0),
		PROV("pv", "us-east-1", "api-3", "api", "API_URL", "http://pv", 0, 1, 0, FOREIGN, 0),
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://b", 0, 6, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://b", 1, 7, 0, APPLIED, 1),
		/* duplicate comes before stale, stale before foreign */
		PROV("sg", "us-east-1", "api-1", "api", "API_URL", "http://a", 0, 1, 1, DUPLICATE, 0),
		PROV("sg", "eu-west-1", "api-1", "api", "OTHER", "x", 0, 1, 0, STALE, 0),
		VEND }, 1 },
	{ "foreign events do not move the last seq", &filter_us, {
		PROV("sg", "us-east-1", "n1", "s", "OTHER", "x", 0, 9, 0, FOREIGN, 0),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "y", 0, 3, 0, APPLIED, 1),
		VEND }, 1 },
	{ "retire, then a late older provides stays retired", &filter_us, {
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v1", 0, 1, 0, APPLIED, 1),
		RETIRE("sg", "us-east-1", "n1", "s", "API_URL", 2, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v1", 0, 1, 0, STALE, 0),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v2", 0, 2, 0, STALE, 0),
		RETIRE("sg", "us-east-1", "n1", "s", "API_URL", 2, 0, APPLIED, 0),
		VEND }, 1 },
	{ "retire, then a newer provides revives", &filter_us, {
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v1", 0, 1, 0, APPLIED, 1),
		RETIRE("sg", "us-east-1", "n1", "s", "API_URL", 2, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v1", 0, 3, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v1", 0, 3, 0, APPLIED, 0),
		VEND }, 1 },
	{ "retire of an unknown provider leaves a tombstone", &filter_us, {
		RETIRE("sg", "us-east-1", "n1", "s", "API_URL", 4, 0, APPLIED, 0),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v", 0, 4, 0, STALE, 0),
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "v", 0, 5, 0, APPLIED, 1),
		VEND }, 1 },
	{ "one announcement: equal seq across keys all applied", &filter_us, {
		PROV("sg", "us-east-1", "n1", "s", "API_URL", "a", 0, 3, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s", "DB_URL", "d", 0, 3, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s2", "DB_URL", "d", 0, 1, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n2", "s", "DB_URL", "d", 0, 1, 0, APPLIED, 1),
		/* the seq is per (federation, node, service), across keys */
		PROV("sg", "us-east-1", "n1", "s", "DB_URL", "e", 0, 2, 0, STALE, 0),
		RETIRE("sg", "us-east-1", "n1", "s", "API_URL", 4, 0, APPLIED, 1),
		PROV("sg", "us-east-1", "n1", "s", "DB_URL", "e", 0, 3, 0, STALE, 0),
		VEND }, 4 },
	{ "region filter \"*\" accepts all", &filter_all, {
		PROV("sg", "eu-west-1", "n1", "s", "API_URL", "a", 0, 1, 0, APPLIED, 1),
		PROV("sg", "ap-south-1", "n2", "s", "API_URL", "b", 0, 1, 0, APPLIED, 1),
		PROV("pv", "ap-south-1", "n3", "s", "API_URL", "c", 0, 1, 0, FOREIGN, 0),
		PROV("sg", "ap-south-1", "n4", "s", "NOPE", "c", 0, 1, 0, FOREIGN, 0),
		VEND }, 2 },
	{ "no filter accepts everything", NULL, {
		PROV("zz", "ap-south-1", "n1", "s", "ANY_KEY", "c", 0, 1, 0, APPLIED, 1),
		VEND }, 1 },
};

#define N_VCASES ((int)(sizeof(vcases) / sizeof(vcases[0])))

START_TEST(test_verdicts)
{
	const struct vcase *c = &vcases[_i];
	struct pb_providers *p = pb_providers_new();
	int i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; c->steps[i].retire >= 0; i++) {
		const struct vstep *s = &c->steps[i];
		struct pb_event ev = make_event(s->retire ? PB_KIND_RETIRE : PB_KIND_PROVIDES, s->fed,
						s->region, s->node, s->service, s->key, s->value,
						s->public, s->seq, 0);
		int changed = -1;
		enum pb_verdict v = pb_providers_apply(p, &ev, s->seen, c->filter, 1000 + i, &changed);

		ck_assert_msg(v == s->expect, "%s: step %d: %s, expected %s", c->name, i,
			      pb_verdict_name(v), pb_verdict_name(s->expect));
		ck_assert_msg(changed == s->changed, "%s: step %d: changed %d, expected %d", c->name,
			      i, changed, s->changed);
	}
	ck_assert_uint_eq(pb_providers_count(p), c->count);
	pb_providers_free(p);
}
END_TEST

static enum pb_verdict apply(struct pb_providers *p, enum pb_kind kind, const char *region,
			     const char *node, const char *key, const char *value, int public,
			     int64_t seq, int64_t ttl_s, int64_t now, int *changed)
{
	struct pb_event ev = make_event(kind, "sg", region, node, "svc", key, value, public, seq,
					ttl_s);

	return pb_providers_apply(p, &ev, 0, NULL, now, changed);
}

#define PROVIDE(p, region, node, key, value, seq) \
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, region, node, key, value, 0, seq, 0, 0, NULL), \
			 PB_VERDICT_APPLIED)

START_TEST(test_applied_state)
{
	struct pb_providers *p = pb_providers_new();
	const struct pb_provider *pv;
	int changed;

	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "http://x", 1, 7,
			       0, 1234, &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(changed, 1);
	ck_assert_uint_eq(pb_providers_count(p), 1);
	pv = pb_providers_at(p, 0);
	ck_assert_str_eq(pv->federation, "sg");
	ck_assert_str_eq(pv->region, "us-east-1");
	ck_assert_str_eq(pv->node, "n1");
	ck_assert_str_eq(pv->service, "svc");
	ck_assert_str_eq(pv->key, "API_URL");
	ck_assert_str_eq(pv->value, "http://x");
	ck_assert_int_eq(pv->public, 1);
	ck_assert_int_eq(pv->seq, 7);
	ck_assert_int_eq(pv->expires_at, NEVER);
	ck_assert_int_eq(pv->updated_at, 1234);
	ck_assert_int_eq(pv->tombstone, 0);
	ck_assert_ptr_null(pb_providers_at(p, 1));

	ck_assert_int_eq(apply(p, PB_KIND_RETIRE, "us-east-1", "n1", "API_URL", NULL, 0, 8, 0, 2000,
			       &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(changed, 1);
	pv = pb_providers_at(p, 0);
	ck_assert_ptr_null(pv->value);
	ck_assert_int_eq(pv->tombstone, 1);
	ck_assert_int_eq(pv->seq, 8);
	ck_assert_int_eq(pv->updated_at, 2000);
	pb_providers_free(p);
}
END_TEST

struct expired {
	int n;
	char keys[8][256];
	char values[8][PB_VALUE_MAX + 1];
};

static void on_expire(const struct pb_provider *pv, void *ctx)
{
	struct expired *x = ctx;

	ck_assert_int_lt(x->n, 8);
	snprintf(x->keys[x->n], sizeof(x->keys[0]), "%s/%s", pv->node, pv->key);
	snprintf(x->values[x->n], sizeof(x->values[0]), "%s", pv->value ? pv->value : "(null)");
	x->n++;
}

START_TEST(test_lease_expiry)
{
	struct pb_providers *p = pb_providers_new();
	struct expired x = { 0 };
	int changed;

	ck_assert_int_eq(pb_providers_next_expiry(p), NEVER);
	/* a lease of 10 s received at 1000 */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "a", 0, 1, 10,
			       1000, &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(pb_providers_at(p, 0)->expires_at, 11000);
	ck_assert_int_eq(pb_providers_next_expiry(p), 11000);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n2", "API_URL", "b", 0, 1, 3,
			       1000, NULL), PB_VERDICT_APPLIED);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n3", "API_URL", "c", 0, 1, 0,
			       1000, NULL), PB_VERDICT_APPLIED);
	ck_assert_int_eq(pb_providers_next_expiry(p), 4000);
	ck_assert_uint_eq(pb_providers_expire(p, 3999, on_expire, &x), 0);
	ck_assert_uint_eq(pb_providers_expire(p, 4000, on_expire, &x), 1);
	ck_assert_int_eq(x.n, 1);
	ck_assert_str_eq(x.keys[0], "n2/API_URL");
	ck_assert_str_eq(x.values[0], "b");
	ck_assert_uint_eq(pb_providers_count(p), 2);
	ck_assert_int_eq(pb_providers_next_expiry(p), 11000);

	/* renewed at 5000: 15000, and no change of the live set */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "a", 0, 2, 10,
			       5000, &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(changed, 0);
	ck_assert_int_eq(pb_providers_next_expiry(p), 15000);
	ck_assert_uint_eq(pb_providers_expire(p, 14999, on_expire, &x), 0);
	ck_assert_uint_eq(pb_providers_expire(p, 20000, on_expire, &x), 1);
	ck_assert_int_eq(x.n, 2);
	ck_assert_str_eq(x.keys[1], "n1/API_URL");
	ck_assert_uint_eq(pb_providers_count(p), 1);	/* no tombstone left */
	ck_assert_int_eq(pb_providers_next_expiry(p), NEVER);

	/* an expired provider comes back with a newer announcement */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "a", 0, 3, 10,
			       21000, &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(changed, 1);
	/* but not with an older one */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n2", "API_URL", "b", 0, 0, 10,
			       21000, &changed), PB_VERDICT_STALE);

	/* a retire ends the lease; a provides without ttl ends it too */
	ck_assert_int_eq(apply(p, PB_KIND_RETIRE, "us-east-1", "n1", "API_URL", NULL, 0, 4, 0,
			       22000, NULL), PB_VERDICT_APPLIED);
	ck_assert_int_eq(pb_providers_next_expiry(p), NEVER);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n4", "API_URL", "d", 0, 1, 5,
			       22000, NULL), PB_VERDICT_APPLIED);
	ck_assert_int_eq(pb_providers_next_expiry(p), 27000);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n4", "API_URL", "d", 0, 2, 0,
			       23000, NULL), PB_VERDICT_APPLIED);
	ck_assert_int_eq(pb_providers_next_expiry(p), NEVER);
	ck_assert_uint_eq(pb_providers_expire(p, NEVER - 1, NULL, NULL), 0);
	ck_assert_int_eq(x.n, 2);
	pb_providers_free(p);
}
END_TEST

/* Many leases expire in time order, ties in tuple order. */
START_TEST(test_lease_order)
{
	struct pb_providers *p = pb_providers_new();
	struct expired x = { 0 };
	static const struct { const char *node; int64_t ttl; } l[] = {
		{ "n5", 5 }, { "n1", 7 }, { "n3", 2 }, { "n2", 5 }, { "n4", 9 },
	};
	size_t i;

	for (i = 0; i < 5; i++)
		ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "r", l[i].node, "API_URL", "v", 0, 1,
				       l[i].ttl, 0, NULL), PB_VERDICT_APPLIED);
	ck_assert_uint_eq(pb_providers_expire(p, 8000, on_expire, &x), 4);
	ck_assert_str_eq(x.keys[0], "n3/API_URL");
	ck_assert_str_eq(x.keys[1], "n2/API_URL");
	ck_assert_str_eq(x.keys[2], "n5/API_URL");
	ck_assert_str_eq(x.keys[3], "n1/API_URL");
	ck_assert_int_eq(pb_providers_next_expiry(p), 9000);
	pb_providers_free(p);
}
END_TEST

/* ---- values */

static const struct pb_static statics[] = {	/* sorted by name */
	{ "API_URL", "http://static-api" },
	{ "DB_URL", "mysql://static-db" },
};

static void check_values(const struct pb_providers *p, const struct pb_want *wants, size_t n,
			 const struct pb_filter *f, int public_only, const char *expect)
{
	struct pb_kv *kv = NULL;
	size_t nkv = 99, i;
	char buf[1024] = "";

	ck_assert_int_eq(pb_providers_values(p, wants, n, f, statics, 2, public_only, &kv, &nkv), 0);
	for (i = 0; i < nkv; i++) {
		size_t len = strlen(buf);

		snprintf(buf + len, sizeof(buf) - len, "%s%s=%s", i ? " " : "", kv[i].name,
			 kv[i].value);
	}
	ck_assert_str_eq(buf, expect);
	pb_kv_free_array(kv, nkv);
}

static const struct pb_want wants[] = {	/* not sorted on purpose */
	{ "WWW", "WWW_URL", NULL },
	{ "DATABASE_URL", "DB_URL", NULL },
	{ "MODE", NULL, "production" },
	{ "API", "API_URL", NULL },
	{ "NOTHING", "NO_SUCH_KEY", NULL },
};
#define N_WANTS (sizeof(wants) / sizeof(wants[0]))

static const struct pb_filter filter_vals = { "sg", NULL, 0, us_only, 1 };

START_TEST(test_values)
{
	struct pb_providers *p = pb_providers_new();

	/* nothing live: statics and the literal; the rest left out */
	check_values(p, wants, N_WANTS, &filter_vals, 0,
		     "API=http://static-api DATABASE_URL=mysql://static-db MODE=production");
	PROVIDE(p, "us-east-1", "n1", "API_URL", "http://b", 1);
	PROVIDE(p, "us-east-1", "n2", "API_URL", "http://a", 1);
	PROVIDE(p, "us-east-1", "n3", "API_URL", "http://b", 1);
	PROVIDE(p, "eu-west-1", "n4", "API_URL", "http://eu", 1);
	PROVIDE(p, "us-east-1", "n5", "WWW_URL", "http://www", 1);
	PROVIDE(p, "us-east-1", "n6", "API_URLS", "http://not-a-prefix", 1);
	PROVIDE(p, "us-east-1", "n6", "API_UR", "http://not-a-prefix", 1);
	/* de-duplicated, sorted, joined; other regions left out */
	check_values(p, wants, N_WANTS, &filter_vals, 0,
		     "API=http://a,http://b DATABASE_URL=mysql://static-db MODE=production "
		     "WWW=http://www");
	/* accepted regions: both, or "*" */
	{
		const struct pb_filter two = { "sg", NULL, 0, two_regions, 2 };
		const struct pb_filter star = { "sg", NULL, 0, all_regions, 1 };

		check_values(p, wants, 1 + 3, &two, 0,
			     "API=http://a,http://b,http://eu DATABASE_URL=mysql://static-db "
			     "MODE=production WWW=http://www");
		check_values(p, wants + 3, 1, &star, 0, "API=http://a,http://b,http://eu");
	}
	/* retire all API_URL providers of the region: back to the static */
	ck_assert_int_eq(apply(p, PB_KIND_RETIRE, "us-east-1", "n1", "API_URL", NULL, 0, 2, 0, 0,
			       NULL), PB_VERDICT_APPLIED);
	check_values(p, wants + 3, 1, &filter_vals, 0, "API=http://a,http://b");
	ck_assert_int_eq(apply(p, PB_KIND_RETIRE, "us-east-1", "n2", "API_URL", NULL, 0, 2, 0, 0,
			       NULL), PB_VERDICT_APPLIED);
	check_values(p, wants + 3, 1, &filter_vals, 0, "API=http://b");
	ck_assert_int_eq(apply(p, PB_KIND_RETIRE, "us-east-1", "n3", "API_URL", NULL, 0, 2, 0, 0,
			       NULL), PB_VERDICT_APPLIED);
	check_values(p, wants + 3, 1, &filter_vals, 0, "API=http://static-api");
	/* no want: nothing, and nothing to free */
	check_values(p, wants, 0, &filter_vals, 0, "");
	pb_providers_free(p);
}
END_TEST

START_TEST(test_public_only)
{
	struct pb_providers *p = pb_providers_new();
	const struct pb_want api = { "API", "API_URL", NULL };
	int changed;

	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "http://private",
			       0, 1, 0, 0, NULL), PB_VERDICT_APPLIED);
	check_values(p, &api, 1, &filter_vals, 0, "API=http://private");
	check_values(p, &api, 1, &filter_vals, 1, "API=http://static-api");
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n2", "API_URL", "http://public",
			       1, 1, 0, 0, NULL), PB_VERDICT_APPLIED);
	check_values(p, &api, 1, &filter_vals, 1, "API=http://public");
	check_values(p, &api, 1, &filter_vals, 0, "API=http://private,http://public");
	/* turning public is a change of the live set */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "http://private",
			       1, 2, 0, 0, &changed), PB_VERDICT_APPLIED);
	ck_assert_int_eq(changed, 1);
	check_values(p, &api, 1, &filter_vals, 1, "API=http://private,http://public");
	pb_providers_free(p);
}
END_TEST

START_TEST(test_put_restores)
{
	struct pb_providers *p = pb_providers_new();
	struct pb_provider pv;
	const struct pb_want api = { "API", "API_URL", NULL };

	memset(&pv, 0, sizeof(pv));
	strcpy(pv.federation, "sg");
	strcpy(pv.region, "us-east-1");
	strcpy(pv.node, "n1");
	strcpy(pv.service, "svc");
	strcpy(pv.key, "API_URL");
	pv.value = "http://restored";
	pv.seq = 10;
	pv.expires_at = 50000;
	pv.updated_at = 40000;
	ck_assert_int_eq(pb_providers_put(p, &pv), 0);
	/* a tombstone of another node */
	strcpy(pv.node, "n2");
	pv.value = NULL;
	pv.tombstone = 1;
	pv.seq = 4;
	pv.expires_at = NEVER;
	ck_assert_int_eq(pb_providers_put(p, &pv), 0);
	ck_assert_uint_eq(pb_providers_count(p), 2);
	ck_assert_int_eq(pb_providers_next_expiry(p), 50000);
	check_values(p, &api, 1, &filter_vals, 0, "API=http://restored");
	/* the seqs came back too */
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n1", "API_URL", "x", 0, 9, 0, 0,
			       NULL), PB_VERDICT_STALE);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n2", "API_URL", "x", 0, 4, 0, 0,
			       NULL), PB_VERDICT_STALE);
	ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", "n2", "API_URL", "y", 0, 5, 0, 0,
			       NULL), PB_VERDICT_APPLIED);
	check_values(p, &api, 1, &filter_vals, 0, "API=http://restored,y");
	/* put over an existing one replaces it */
	strcpy(pv.node, "n1");
	pv.value = "http://again";
	pv.tombstone = 0;
	pv.seq = 11;
	ck_assert_int_eq(pb_providers_put(p, &pv), 0);
	ck_assert_uint_eq(pb_providers_count(p), 2);
	ck_assert_int_eq(pb_providers_next_expiry(p), NEVER);
	check_values(p, &api, 1, &filter_vals, 0, "API=http://again,y");
	pb_providers_free(p);
}
END_TEST

/* A restore in bulk (pb_providers_put appends, the next other call sorts
 * the lot in once): 3,000 puts in a scrambled order, with providers put
 * twice (the last put wins) and several keys of one (node, service),
 * give the same set as the same puts settled one at a time (each
 * followed by a count): the same providers in the same sorted order, the
 * same leases, the same seqs (stale below them). */
/* _i = 1: 30,000 puts, most of them from slabs (providers.c) */
START_TEST(test_put_bulk)
{
	struct pb_providers *bulk = pb_providers_new(), *one = pb_providers_new();
	static const char *const ks[] = { "API_URL", "DB_URL", "CACHE_URL" };
	char val[32];
	size_t n_expired_b, n_expired_o;
	int n = _i ? 30000 : 3000, nodes = _i ? 4000 : 400;

	for (int i = 0; i < n; i++) {
		struct pb_provider pv;
		int k = (i * 7919) % (n / 3);	/* scrambled, each k three times */

		memset(&pv, 0, sizeof(pv));
		strcpy(pv.federation, "sg");
		strcpy(pv.region, k % 3 ? "us-east-1" : "eu-west-1");
		snprintf(pv.node, sizeof(pv.node), "n%d", k % nodes);
		strcpy(pv.service, "svc");
		strcpy(pv.key, ks[k % 3]);
		snprintf(val, sizeof(val), "http://%d/%d", k, i);
		pv.value = i % 11 ? val : NULL;
		pv.tombstone = !(i % 11);
		pv.seq = 100 + i;
		pv.expires_at = i % 5 ? NEVER : 5000 + (i * 31) % 997;
		pv.updated_at = i;
		ck_assert_int_eq(pb_providers_put(bulk, &pv), 0);
		ck_assert_int_eq(pb_providers_put(one, &pv), 0);
		if (!_i || i % 997 == 0)	/* settled after (nearly) each put */
			(void)pb_providers_count(one);
	}
	ck_assert_uint_eq(pb_providers_count(bulk), pb_providers_count(one));
	ck_assert_uint_eq(pb_providers_count(bulk), (size_t)n / 3);
	for (size_t i = 0; i < pb_providers_count(bulk); i++) {
		const struct pb_provider *a = pb_providers_at(bulk, i), *b = pb_providers_at(one, i);

		ck_assert_str_eq(a->key, b->key);
		ck_assert_str_eq(a->region, b->region);
		ck_assert_str_eq(a->node, b->node);
		ck_assert_int_eq(a->seq, b->seq);
		ck_assert_int_eq(a->tombstone, b->tombstone);
		ck_assert_int_eq(a->expires_at, b->expires_at);
		ck_assert(a->value ? b->value && !strcmp(a->value, b->value) : !b->value);
		/* the last put of the provider won: its seq is the highest */
		ck_assert_int_ge(a->seq, 100 + 2 * n / 3);
		if (i) {
			const struct pb_provider *prev = pb_providers_at(bulk, i - 1);
			int c = strcmp(prev->key, a->key);

			ck_assert(c < 0 || (c == 0 && (strcmp(prev->region, a->region) < 0 ||
						      (!strcmp(prev->region, a->region) &&
						       strcmp(prev->node, a->node) < 0))));
		}
	}
	ck_assert_int_eq(pb_providers_next_expiry(bulk), pb_providers_next_expiry(one));
	ck_assert_int_ne(pb_providers_next_expiry(bulk), NEVER);
	/* seqs: n7 was put last with seq 100 + 2999 - x for some key; any seq
	 * below the highest of (sg, n7, svc) is stale in both */
	ck_assert_int_eq(apply(bulk, PB_KIND_PROVIDES, "us-east-1", "n7", "API_URL", "x", 0, 100, 0,
			       0, NULL), PB_VERDICT_STALE);
	ck_assert_int_eq(apply(one, PB_KIND_PROVIDES, "us-east-1", "n7", "API_URL", "x", 0, 100, 0,
			       0, NULL), PB_VERDICT_STALE);
	ck_assert_int_eq(apply(bulk, PB_KIND_PROVIDES, "us-east-1", "n7", "API_URL", "x", 0, 100 + n,
			       0, 0, NULL), PB_VERDICT_APPLIED);
	n_expired_b = pb_providers_expire(bulk, 7000, NULL, NULL);
	n_expired_o = pb_providers_expire(one, 7000, NULL, NULL);
	ck_assert_uint_eq(n_expired_b, n_expired_o);
	ck_assert_uint_gt(n_expired_b, 0);
	ck_assert_int_eq(pb_providers_next_expiry(bulk), NEVER);
	pb_providers_free(bulk);
	pb_providers_free(one);
}
END_TEST

START_TEST(test_kv_equal)
{
	struct pb_kv a[] = { { "A", "1" }, { "B", "2" } };
	struct pb_kv b[] = { { "A", "1" }, { "B", "2" } };
	struct pb_kv c[] = { { "A", "1" }, { "B", "3" } };
	struct pb_kv d[] = { { "A", "1" }, { "C", "2" } };

	ck_assert(pb_kv_equal(a, 2, b, 2));
	ck_assert(pb_kv_equal(NULL, 0, NULL, 0));
	ck_assert(pb_kv_equal(a, 0, NULL, 0));
	ck_assert(!pb_kv_equal(a, 2, b, 1));
	ck_assert(!pb_kv_equal(a, 1, b, 2));
	ck_assert(!pb_kv_equal(a, 2, c, 2));
	ck_assert(!pb_kv_equal(a, 2, d, 2));
}
END_TEST

START_TEST(test_verdict_names)
{
	static const char *const names[] = { "applied", "duplicate", "stale", "foreign", "expired",
					     "invalid" };
	enum pb_verdict v;
	int i;

	for (i = 0; i < PB_VERDICT__COUNT; i++) {
		ck_assert_str_eq(pb_verdict_name((enum pb_verdict)i), names[i]);
		ck_assert_int_eq(pb_verdict_parse(names[i], &v), 0);
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(pb_verdict_parse("Applied", &v), -1);
	ck_assert_int_eq(pb_verdict_parse(NULL, &v), -1);
}
END_TEST

/* Thousands of providers, many updates: each apply is a lookup, not a
 * scan (this would take minutes with O(n) applies under valgrind). */
START_TEST(test_many)
{
	struct pb_providers *p = pb_providers_new();
	const struct pb_want api = { "API", "API_URL", NULL };
	struct pb_kv *kv;
	size_t nkv;
	enum { NODES = 3000, ROUNDS = 10 };
	char node[32], value[32];
	int r, i, changed;

	for (r = 0; r < ROUNDS; r++)
		for (i = 0; i < NODES; i++) {
			snprintf(node, sizeof(node), "n%d", (i * 7919) % NODES);
			snprintf(value, sizeof(value), "v%d", i % 100);
			ck_assert_int_eq(apply(p, PB_KIND_PROVIDES, "us-east-1", node,
					       i % 2 ? "API_URL" : "DB_URL", value, 0, r, 60, r * 1000,
					       &changed), PB_VERDICT_APPLIED);
		}
	ck_assert_uint_eq(pb_providers_count(p), NODES);
	ck_assert_int_eq(pb_providers_next_expiry(p), (ROUNDS - 1) * 1000 + 60000);
	ck_assert_int_eq(pb_providers_values(p, &api, 1, &filter_vals, NULL, 0, 0, &kv, &nkv), 0);
	ck_assert_uint_eq(nkv, 1);
	ck_assert(strncmp(kv[0].value, "v1,v11,v13,", 11) == 0);
	pb_kv_free_array(kv, nkv);
	ck_assert_uint_eq(pb_providers_expire(p, NEVER - 1, NULL, NULL), NODES);
	ck_assert_uint_eq(pb_providers_count(p), 0);
	pb_providers_free(p);
}
END_TEST

/* Random provides/retire/lease traffic against a plain model: the lease
 * heap and the sorted array must agree with a scan after every step. */
START_TEST(test_random_model)
{
	struct pb_providers *p = pb_providers_new();
	uint32_t rng = 12345;
	int64_t seq[16] = { 0 }, now = 0;
	char node[16];
	int step;

	for (step = 0; step < 3000; step++) {
		int64_t naive = NEVER, want_removed = 0;
		size_t i, n;
		int k;

		rng = rng * 1103515245u + 12345u;
		k = (int)((rng >> 8) % 16);
		snprintf(node, sizeof(node), "n%d", k);
		now += (rng >> 20) % 700;
		ck_assert_int_eq(apply(p, (rng >> 4) % 5 ? PB_KIND_PROVIDES : PB_KIND_RETIRE,
				       "r", node, (rng >> 12) % 2 ? "API_URL" : "DB_URL", "v", 0,
				       ++seq[k], (rng >> 14) % 3 ? (int64_t)((rng >> 16) % 9) : 0, now,
				       NULL), PB_VERDICT_APPLIED);
		n = pb_providers_count(p);
		for (i = 0; i < n; i++) {
			const struct pb_provider *pv = pb_providers_at(p, i);

			if (i) {
				const struct pb_provider *prev = pb_providers_at(p, i - 1);
				int c = strcmp(prev->key, pv->key);

				ck_assert(c < 0 || (c == 0 && strcmp(prev->node, pv->node) < 0));
			}
			if (pv->tombstone) {
				ck_assert_int_eq(pv->expires_at, NEVER);
				continue;
			}
			if (pv->expires_at < naive)
				naive = pv->expires_at;
			if (pv->expires_at <= now + 300)
				want_removed++;
		}
		ck_assert_int_eq(pb_providers_next_expiry(p), naive);
		if (step % 7 == 0)
			ck_assert_int_eq((int64_t)pb_providers_expire(p, now + 300, NULL, NULL),
					 want_removed);
	}
	pb_providers_free(p);
}
END_TEST

/* pb_providers_value_change, before each event, against the values
 * pb_providers_values computes before and after it: a random stream over
 * a few nodes, values, regions and public flags, with retires, in both
 * public_only modes, with and without a static for the key. The first
 * half is applied with every region accepted, then a reload narrows the
 * regions to us-east-1 (the eu-west-1 providers stay in the store, and
 * must not count) and flips public_only. */
static char *joined(const struct pb_providers *p, const struct pb_want *w,
		    const struct pb_filter *f, const struct pb_static *st, size_t n_st,
		    int public_only)
{
	struct pb_kv *kv;
	size_t n;
	char *out;

	ck_assert_int_eq(pb_providers_values(p, w, 1, f, st, n_st, public_only, &kv, &n), 0);
	out = strdup(n ? kv[0].value : "(absent)");
	pb_kv_free_array(kv, n);
	return out;
}

START_TEST(test_value_change_model)
{
	static const char *const vals[] = { "http://a", "http://b", "http://c" };
	static const char *const regions[] = { "us-east-1", "eu-west-1" };
	const struct pb_want w = { "API", "API_URL", NULL };
	const struct pb_static st = { (char *)"API_URL", (char *)"http://b" };
	const int with_static = _i >> 1;
	int public_only;
	struct pb_providers *p = pb_providers_new();
	uint32_t rng = 777u + (uint32_t)_i;
	int64_t seq = 0;
	int counts[3] = { 0 };	/* -1, 0, 1 answers: each must occur */

	for (int step = 0; step < 4000; step++) {
		struct pb_event ev;
		char node[8], *before, *after;
		int delta, changed = 0;
		enum pb_verdict v;

		const struct pb_filter *applied_with = step < 2000 ? &filter_all : &filter_us;

		public_only = (_i & 1) ^ (step >= 2000);
		rng = rng * 1103515245u + 12345u;
		snprintf(node, sizeof(node), "n%u", (rng >> 8) % 5);
		ev = make_event((rng >> 4) % 4 ? PB_KIND_PROVIDES : PB_KIND_RETIRE, "sg",
				regions[(rng >> 12) % 2], node, "svc", "API_URL",
				vals[(rng >> 16) % 3], (rng >> 20) % 3 != 0, ++seq, 0);
		before = joined(p, &w, &filter_us, &st, with_static, public_only);
		delta = pb_providers_value_change(p, &ev, &filter_us, public_only, SIZE_MAX);
		v = pb_providers_apply(p, &ev, 0, applied_with, 0, &changed);
		after = joined(p, &w, &filter_us, &st, with_static, public_only);
		if (v == PB_VERDICT_APPLIED && changed) {
			counts[delta + 1]++;
			if (delta >= 0)
				ck_assert_msg(delta == (strcmp(before, after) != 0),
					      "step %d: %s -> %s, said %d", step, before, after,
					      delta);
		} else {
			ck_assert_str_eq(before, after);
		}
		free(before);
		free(after);
	}
	ck_assert(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
	/* more providers than allowed: -2, no scan */
	{
		struct pb_event ev = make_event(PB_KIND_PROVIDES, "sg", "us-east-1", "n9", "svc",
						"API_URL", "http://d", 1, ++seq, 0);
		size_t k = 0;

		for (size_t i = 0; i < pb_providers_count(p); i++)
			k += !strcmp(pb_providers_at(p, i)->key, "API_URL");
		ck_assert_uint_gt(k, 1);
		ck_assert_int_eq(pb_providers_value_change(p, &ev, &filter_us, public_only, k - 1), -2);
		ck_assert_int_ge(pb_providers_value_change(p, &ev, &filter_us, public_only, k), -1);
	}
	pb_providers_free(p);
}
END_TEST

/* The counting index of pb_providers_value_change against the scan it
 * replaces (pb_providers_value_change_scan), before every event of random
 * streams: provides and retires over several regions, values and public
 * flags, leases that run out (pb_providers_expire), restores
 * (pb_providers_put), and the filter and public_only changing now and then
 * (a reload), so the index is both kept up to date and built again. */
static const char *const eu_only[] = { "eu-west-1" };
static const struct pb_filter filter_eu = { "sg", keys, 2, eu_only, 1 };
static const struct pb_filter filter_two = { "sg", keys, 2, two_regions, 2 };
static const struct pb_filter filter_none = { "sg", keys, 2, NULL, 0 };

START_TEST(test_value_change_differential)
{
	static const char *const vals[] = { "http://a", "http://b", "http://c", "http://d" };
	static const char *const regs[] = { "us-east-1", "eu-west-1", "ap-south-1" };
	static const char *const ks[] = { "API_URL", "DB_URL" };
	const struct pb_filter *filters[] = { &filter_us, &filter_all, &filter_two, &filter_eu,
					      &filter_none, NULL };
	struct pb_providers *p = pb_providers_new();
	uint32_t rng = 4242u + 977u * (uint32_t)_i;
	int64_t seq = 0, now = 1000;
	const struct pb_filter *f = &filter_us;
	int public_only = 0, seen[4] = { 0 };
	size_t n_expired = 0;

	for (int step = 0; step < 20000; step++) {
		struct pb_event ev;
		char node[8];
		int a, b, changed;

		rng = rng * 1103515245u + 12345u;
		if (step % 1500 == 1499) {	/* a reload */
			f = filters[(rng >> 8) % 6];
			public_only = (rng >> 12) & 1;
		}
		snprintf(node, sizeof(node), "n%u", (rng >> 4) % 12);
		ev = make_event((rng >> 9) % 5 ? PB_KIND_PROVIDES : PB_KIND_RETIRE, "sg",
				regs[(rng >> 13) % 3], node, "svc", ks[(rng >> 15) & 1],
				vals[(rng >> 16) % 4], (rng >> 18) % 3 != 0, ++seq,
				(rng >> 20) % 4 == 0 ? 1 + (rng >> 22) % 5 : 0);
		if ((rng >> 24) % 50 == 0) {	/* a restore of a stored row */
			struct pb_provider pv;

			memset(&pv, 0, sizeof(pv));
			snprintf(pv.federation, sizeof(pv.federation), "sg");
			snprintf(pv.region, sizeof(pv.region), "%s", ev.region);
			snprintf(pv.node, sizeof(pv.node), "%s", ev.node);
			snprintf(pv.service, sizeof(pv.service), "svc");
			snprintf(pv.key, sizeof(pv.key), "%s", ev.key);
			pv.value = ev.kind == PB_KIND_PROVIDES ? ev.value : NULL;
			pv.tombstone = ev.kind != PB_KIND_PROVIDES;
			pv.public = ev.public;
			pv.seq = ev.seq;
			pv.expires_at = PB_TIME_NEVER;
			ck_assert_int_eq(pb_providers_put(p, &pv), 0);
			continue;
		}
		a = pb_providers_value_change(p, &ev, f, public_only, SIZE_MAX);
		b = pb_providers_value_change_scan(p, &ev, f, public_only, SIZE_MAX);
		ck_assert_msg(a == b, "step %d (seed %d): index says %d, scan %d", step, _i, a, b);
		seen[a + 1]++;
		pb_providers_apply(p, &ev, 0, f ? f : &filter_all, now, &changed);
		now += 300;
		if (step % 5 == 0)
			n_expired += pb_providers_expire(p, now, NULL, NULL);
	}
	/* every answer came up, and leases ran out under the index */
	ck_assert(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
	ck_assert_uint_gt(n_expired, 0);
	pb_providers_free(p);
}
END_TEST

/* Many providers of one key, one value each and shared values: the index
 * and the scan agree on a provider that moves, leaves, or joins. */
START_TEST(test_value_change_many)
{
	struct pb_providers *p = pb_providers_new();
	int64_t seq = 0;
	char node[16], val[32];
	int changed;

	for (int i = 0; i < 3000; i++) {
		struct pb_event ev;

		snprintf(node, sizeof(node), "n%d", i);
		snprintf(val, sizeof(val), "http://10.0.%d.%d", i % 7 == 0 ? 0 : i / 250, i % 250);
		ev = make_event(PB_KIND_PROVIDES, "sg", "us-east-1", node, "svc", "API_URL", val,
				1, ++seq, 0);
		ck_assert_int_eq(pb_providers_value_change(p, &ev, &filter_us, 0, SIZE_MAX),
				 pb_providers_value_change_scan(p, &ev, &filter_us, 0, SIZE_MAX));
		ck_assert_int_eq(pb_providers_apply(p, &ev, 0, &filter_us, 0, &changed),
				 PB_VERDICT_APPLIED);
	}
	for (int i = 0; i < 3000; i += 7) {
		struct pb_event ev;

		snprintf(node, sizeof(node), "n%d", i);
		ev = make_event(i % 2 ? PB_KIND_RETIRE : PB_KIND_PROVIDES, "sg", "us-east-1", node,
				"svc", "API_URL", "http://10.0.0.1", 1, ++seq, 0);
		ck_assert_int_eq(pb_providers_value_change(p, &ev, &filter_us, 0, SIZE_MAX),
				 pb_providers_value_change_scan(p, &ev, &filter_us, 0, SIZE_MAX));
		pb_providers_apply(p, &ev, 0, &filter_us, 0, &changed);
	}
	pb_providers_free(p);
}
END_TEST

static Suite *providers_suite(void)
{
	Suite *s = suite_create("providers");
	TCase *tc = tcase_create("providers");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_verdicts, 0, N_VCASES);
	tcase_add_test(tc, test_applied_state);
	tcase_add_test(tc, test_lease_expiry);
	tcase_add_test(tc, test_lease_order);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_public_only);
	tcase_add_test(tc, test_put_restores);
	tcase_add_loop_test(tc, test_put_bulk, 0, 2);
	tcase_add_test(tc, test_kv_equal);
	tcase_add_test(tc, test_verdict_names);
	tcase_add_test(tc, test_many);
	tcase_add_test(tc, test_random_model);
	tcase_add_loop_test(tc, test_value_change_model, 0, 4);
	tcase_add_loop_test(tc, test_value_change_differential, 0, 4);
	tcase_add_test(tc, test_value_change_many);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(providers_suite());
}
