/* test_fleetcache.c — provbus-fleet's cache (fleet/cache.c): a model
 * built from a whole stream and then pruned at offset k, or saved,
 * loaded and fed the rest, holds exactly what a model fed only the
 * events from offset k on holds (a read of the window), whenever
 * fl_prune accepts the prune; random streams with out-of-order seqs,
 * duplicates, retires and leases. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fleet/fleet.h"
#include "suite_main.h"

#define FED "sg"
#define DIGEST "0123456789012345678901234567890123456789012345678901234567890123"
#define NOW 1800000000000LL

struct ev {
	char body[512], rk[128];
};

static uint32_t rng;

static uint32_t rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) & 0xffffff;
}

/* A random stream: 3 nodes x 2 services x 3 keys; seqs mostly rising,
 * sometimes late (an older seq again) or a duplicate. */
static void make_stream(struct ev *v, size_t n)
{
	int64_t seqs[3][2] = { { 10, 10 }, { 10, 10 }, { 10, 10 } };

	for (size_t i = 0; i < n; i++) {
		int node = (int)(rnd() % 3), svc = (int)(rnd() % 2), key = (int)(rnd() % 3);
		int retire = rnd() % 5 == 0, r = (int)(rnd() % 10);
		int64_t seq = r == 0 ? seqs[node][svc] - 1 - (int64_t)(rnd() % 3)	/* late */
			      : r == 1 ? seqs[node][svc]					/* again */
				       : ++seqs[node][svc];
		int ttl = rnd() % 4 == 0 ? 60 : 0;
		char value[64];

		snprintf(value, sizeof(value), "\"v%u\"", rnd() % 4);
		snprintf(v[i].rk, sizeof(v[i].rk), "us-east-1.%s.K%d", retire ? "retire" : "provides",
			 key);
		snprintf(v[i].body, sizeof(v[i].body),
			 "{\"v\": 1, \"id\": \"3f0c1d52-8d7e-4c35-9a55-%012zx\", \"kind\": \"%s\", "
			 "\"federation\": \"" FED "\", \"region\": \"us-east-1\", \"node\": \"n%d\", "
			 "\"service\": \"s%d\", \"key\": \"K%d\", \"value\": %s, \"public\": false, "
			 "\"seq\": %lld, \"ttl_s\": %d, \"ts\": \"2026-11-22T03:00:%02zu.000Z\"}",
			 i, retire ? "retire" : "provides", node, svc, key, retire ? "null" : value,
			 (long long)seq, retire ? 0 : ttl, i % 60);
	}
}

/* v[from..to) as messages at their offsets, to take (fl_take_event for
 * the history stream, fl_take_report for the fleet stream). */
static void feed_with(struct fleet *f, const struct ev *v, size_t from, size_t to,
		      void (*take)(struct fleet *, const struct fl_msg *, int64_t))
{
	for (size_t i = from; i < to; i++) {
		struct fl_msg m = { "provbus." FED, v[i].rk, NULL, v[i].body, strlen(v[i].body),
				    (int64_t)i };

		take(f, &m, NOW);
	}
}

static void feed(struct fleet *f, const struct ev *v, size_t from, size_t to)
{
	feed_with(f, v, from, to, fl_take_event);
}

/* The providers of f, one line each, every field. */
static char *dump(const struct fleet *f)
{
	size_t size = 0;
	char *out = NULL;
	FILE *fp = open_memstream(&out, &size);

	for (size_t i = 0; i < pb_providers_count(f->prov); i++) {
		const struct pb_provider *pv = pb_providers_at(f->prov, i);

		fprintf(fp, "%s/%s/%s/%s/%s=%s pub=%d seq=%lld exp=%lld upd=%lld tomb=%d\n",
			pv->federation, pv->region, pv->node, pv->service, pv->key,
			pv->value ? pv->value : "-", pv->public, (long long)pv->seq,
			(long long)pv->expires_at, (long long)pv->updated_at, pv->tombstone);
	}
	fclose(fp);
	return out;
}

static void init(struct fleet *f)
{
	fl_init(f, FED);
	f->trust_user_id = 1;
	ck_assert_ptr_nonnull(f->prov);
}

START_TEST(prune_is_a_read_of_the_window)
{
	enum { N = 120 };
	struct ev v[N];
	size_t accepted = 0, refused = 0;

	rng = 7 + (uint32_t)_i;
	make_stream(v, N);
	for (size_t k = 0; k <= N; k += 3) {
		struct fleet all, win;
		char *a, *b;
		int rc;

		init(&all);
		init(&win);
		feed(&all, v, 0, N);
		feed(&win, v, k, N);
		rc = fl_prune(&all, (int64_t)k);
		ck_assert_int_ge(rc, -1);
		if (rc == 0) {
			a = dump(&all);
			b = dump(&win);
			ck_assert_str_eq(a, b);
			free(a);
			free(b);
			/* and the same next events give the same verdicts */
			feed(&all, v, 0, N);
			feed(&win, v, 0, N);
			a = dump(&all);
			b = dump(&win);
			ck_assert_str_eq(a, b);
			free(a);
			free(b);
			accepted++;
		} else {
			refused++;
		}
		fl_release(&all);
		fl_release(&win);
	}
	ck_assert_uint_gt(accepted, 0);
	(void)refused;
}
END_TEST

START_TEST(saved_loaded_fed_pruned)
{
	enum { N = 150 };
	struct ev v[N];
	char dir[] = "/tmp/pbt-fleetcache-XXXXXX", path[128];
	size_t accepted = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/provbus/c.json", dir);
	rng = 100 + (uint32_t)_i;
	make_stream(v, N);
	for (size_t cut = 10; cut < N; cut += 35) {
		for (size_t k = 0; k <= N; k += 7) {
			struct fleet a, b, w;
			struct pb_err e = PB_ERR_INIT;
			struct fl_cache_pos pos = { { (int64_t)cut - 1, -1 }, { DIGEST, "" } }, got;
			char why[600];
			char *da, *dw;

			init(&a);
			feed(&a, v, 0, cut);
			ck_assert_int_eq(fl_cache_save(&a, path, "h:1/v", 86400, &pos, &e), 0);
			ck_assert_int_eq(access(path, F_OK), 0);
			init(&b);
			ck_assert_int_eq(fl_cache_load(&b, path, "h:1/v", 86400, &got, why, sizeof(why)),
					 0);
			ck_assert_int_eq(got.offset[0], (int64_t)cut - 1);
			ck_assert_int_eq(got.offset[1], -1);
			ck_assert_str_eq(got.digest[0], DIGEST);
			feed(&b, v, cut, N);
			init(&w);
			feed(&w, v, k, N);
			if (fl_prune(&b, (int64_t)k) == 0) {
				da = dump(&b);
				dw = dump(&w);
				ck_assert_str_eq(da, dw);
				free(da);
				free(dw);
				accepted++;
			}
			fl_release(&a);
			fl_release(&b);
			fl_release(&w);
		}
	}
	ck_assert_uint_gt(accepted, 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/provbus", dir);
	rmdir(path);
	rmdir(dir);
}
END_TEST

START_TEST(load_refuses)
{
	char dir[] = "/tmp/pbt-fleetcache-XXXXXX", path[128], why[600];
	struct fl_cache_pos pos = { { 5, -1 }, { DIGEST, "" } }, got;
	struct fleet f;
	struct pb_err e = PB_ERR_INIT;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.json", dir);
	init(&f);
	ck_assert_int_eq(fl_cache_load(&f, path, "h:1/v", 60, &got, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "no cache"));
	ck_assert_int_eq(fl_cache_save(&f, path, "h:1/v", 60, &pos, &e), 0);
	ck_assert_int_eq(fl_cache_load(&f, path, "h:1/v", 61, &got, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "history_window_s"));
	ck_assert_int_eq(fl_cache_load(&f, path, "h:2/v", 60, &got, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "another federation or broker"));
	ck_assert_int_eq(fl_cache_load(&f, path, "h:1/v", 60, &got, why, sizeof(why)), 0);
	ck_assert_int_eq(got.offset[0], 5);
	fp = fopen(path, "w");
	fputs("{\"provbus_fleet_cache\": 1, \"prov", fp);
	fclose(fp);
	ck_assert_int_eq(fl_cache_load(&f, path, "h:1/v", 60, &got, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "unreadable"));
	fl_release(&f);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- the fleet stream's reports */

static void make_reports(struct ev *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int node = (int)(rnd() % 4), kind = (int)(rnd() % 3);

		snprintf(v[i].rk, sizeof(v[i].rk), "r.%s.n%d", kind ? "run" : "presence", node);
		if (!kind)
			snprintf(v[i].body, sizeof(v[i].body),
				 "{\"v\":1,\"id\":\"p%zu\",\"kind\":\"presence\",\"federation\":\"" FED
				 "\",\"region\":\"r\",\"node\":\"n%d\",\"ts\":\"2026-11-22T03:00:%02zu.000Z\","
				 "\"ttl_s\":%zu,\"keys\":[\"K0\"],\"state\":\"running\"}",
				 i, node, i % 60, 30 + i);
		else
			snprintf(v[i].body, sizeof(v[i].body),
				 "{\"v\":1,\"id\":\"r%zu\",\"kind\":\"run\",\"federation\":\"" FED
				 "\",\"region\":\"r\",\"node\":\"n%d\",\"ts\":\"t\",\"run_id\":%zu,"
				 "\"status\":\"%s\"}",
				 i, node, i, kind == 1 ? "ok" : "failed");
	}
}

static void feed_reports(struct fleet *f, const struct ev *v, size_t from, size_t to)
{
	feed_with(f, v, from, to, fl_take_report);
}

static char *dump_nodes(const struct fleet *f)
{
	size_t size = 0;
	char *out = NULL;
	FILE *fp = open_memstream(&out, &size);

	for (size_t i = 0; i < f->n_nodes; i++) {
		const struct fl_node *n = &f->nodes[i];
		char *p = n->presence ? json_dumps(n->presence, JSON_SORT_KEYS) : NULL;
		char *r = n->last_run ? json_dumps(n->last_run, JSON_SORT_KEYS) : NULL;
		char *k = n->last_ok ? json_dumps(n->last_ok, JSON_SORT_KEYS) : NULL;

		fprintf(fp, "%s lease=%lld p=%s r=%s k=%s\n", n->name, (long long)n->lease_end,
			p ? p : "-", r ? r : "-", k ? k : "-");
		free(p);
		free(r);
		free(k);
	}
	fclose(fp);
	return out;
}

START_TEST(reports_pruned_saved_loaded)
{
	enum { N = 60 };
	struct ev v[N];
	char dir[] = "/tmp/pbt-fleetcache-XXXXXX", path[128], why[600];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.json", dir);
	rng = 300 + (uint32_t)_i;
	make_reports(v, N);
	for (size_t cut = 5; cut < N; cut += 11) {
		for (size_t k = 0; k <= N; k += 4) {
			struct fleet a, b, w;
			struct pb_err e = PB_ERR_INIT;
			struct fl_cache_pos pos = { { 0, (int64_t)cut - 1 }, { DIGEST, DIGEST } }, got;
			char *db, *dw;

			init(&a);
			feed_reports(&a, v, 0, cut);
			ck_assert_int_eq(fl_cache_save(&a, path, "h:1/v", 60, &pos, &e), 0);
			init(&b);
			ck_assert_int_eq(fl_cache_load(&b, path, "h:1/v", 60, &got, why, sizeof(why)), 0);
			ck_assert_int_eq(got.offset[1], (int64_t)cut - 1);
			feed_reports(&b, v, cut, N);
			fl_prune_reports(&b, (int64_t)k);
			init(&w);
			feed_reports(&w, v, k, N);
			db = dump_nodes(&b);
			dw = dump_nodes(&w);
			ck_assert_str_eq(db, dw);
			free(db);
			free(dw);
			fl_release(&a);
			fl_release(&b);
			fl_release(&w);
		}
	}
	unlink(path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fleetcache");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, prune_is_a_read_of_the_window, 0, 40);
	tcase_add_loop_test(tc, saved_loaded_fed_pruned, 0, 10);
	tcase_add_test(tc, load_refuses);
	tcase_add_loop_test(tc, reports_pruned_saved_loaded, 0, 5);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
