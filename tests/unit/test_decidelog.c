/* test_decidelog.c — the decision core's parameters as JSON (the audit
 * log's start and reload inputs): what the daemon writes, replay reads
 * back the same. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "decidelog.h"
#include "suite_main.h"

START_TEST(test_round_trip)
{
	static const struct pb_want wants[] = { { "API_URL", "api", NULL },
						{ "MODE", NULL, "blue" } };
	static const struct pb_static statics[] = { { (char *)"API_URL", (char *)"http://x" } };
	static const char *const keys[] = { "api", "db" }, *const regions[] = { "eu-1" };
	struct pb_decide_params p = { { 100, 3000, 4, 60000, 250, 2, 500 }, wants, 2,
				      { "fed", keys, 2, regions, 1 }, statics, 1, 1 }, q;
	struct pb_decide_params_store *store = NULL;
	json_t *j = pb_decide_params_to_json(&p), *back;

	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(pb_decide_params_from_json(j, &q, &store), 0);
	ck_assert_int_eq(q.deb.quiet_ms, 100);
	ck_assert_int_eq(q.deb.max_wait_ms, 3000);
	ck_assert_int_eq(q.deb.throttle_runs, 4);
	ck_assert_int_eq(q.deb.throttle_per_ms, 60000);
	ck_assert_int_eq(q.deb.splay_ms, 250);
	ck_assert_int_eq(q.deb.retry_max, 2);
	ck_assert_int_eq(q.deb.retry_base_ms, 500);
	ck_assert_int_eq(q.public_only, 1);
	ck_assert_uint_eq(q.n_wants, 2);
	ck_assert_str_eq(q.wants[0].env, "API_URL");
	ck_assert_str_eq(q.wants[0].key, "api");
	ck_assert_ptr_null(q.wants[0].literal);
	ck_assert_ptr_null(q.wants[1].key);
	ck_assert_str_eq(q.wants[1].literal, "blue");
	ck_assert_uint_eq(q.n_statics, 1);
	ck_assert_str_eq(q.statics[0].value, "http://x");
	ck_assert_str_eq(q.filter.federation, "fed");
	ck_assert_uint_eq(q.filter.n_keys, 2);
	ck_assert_str_eq(q.filter.keys[1], "db");
	ck_assert_uint_eq(q.filter.n_regions, 1);
	ck_assert_str_eq(q.filter.regions[0], "eu-1");
	/* written again: the same JSON */
	back = pb_decide_params_to_json(&q);
	ck_assert(json_equal(j, back));
	json_decref(back);
	json_decref(j);
	pb_decide_params_store_free(store);
}
END_TEST

START_TEST(test_defaults)
{
	struct pb_decide_params q;
	struct pb_decide_params_store *store = NULL;
	json_t *j = json_object();

	/* an empty object: provbus.json(5)'s defaults, nothing required */
	ck_assert_int_eq(pb_decide_params_from_json(j, &q, &store), 0);
	ck_assert_int_eq(q.deb.quiet_ms, 2000);
	ck_assert_int_eq(q.deb.max_wait_ms, 30000);
	ck_assert_int_eq(q.deb.throttle_per_ms, 600000);
	ck_assert_uint_eq(q.n_wants, 0);
	ck_assert_ptr_null(q.filter.federation);
	json_decref(j);
	pb_decide_params_store_free(store);
	pb_decide_params_store_free(NULL);
}
END_TEST

/* A snapshot's pending debounce state: taken from a debounce, written,
 * read back and set into a fresh one, which then decides the same. */
START_TEST(test_pending_round_trip)
{
	struct pb_debounce_params dp = { 200, 3000, 1, 60000, 0, 2, 500 };
	struct pb_debounce a, b;
	struct pb_debounce_pending pa, pb;
	struct pb_debounce_due da, db;
	json_t *j;

	pb_debounce_init(&a, &dp);
	pb_debounce_seed_starts(&a, (const int64_t[]){ 1000 }, 1);
	pb_debounce_change(&a, 5000, PB_REASON_EXPIRY, 1);
	pb_debounce_change(&a, 5100, PB_REASON_CHANGE, 1);
	pb_debounce_request(&a, 5050, PB_REASON_MANUAL);
	pb_debounce_poll(&a, 5060, NULL, NULL, &da);	/* due since 5050, throttled */
	ck_assert_int_eq(da.start, 0);
	pb_debounce_get_pending(&a, &pa);
	ck_assert_ptr_nonnull(j = pb_debounce_pending_to_json(&pa));
	memset(&pb, 0x5a, sizeof(pb));
	pb_debounce_pending_from_json(j, &pb);
	ck_assert_int_eq(pb.change_pending, 1);
	ck_assert_int_eq(pb.change_reason, PB_REASON_EXPIRY);
	ck_assert_uint_eq(pb.requests, 1u << PB_REASON_MANUAL);
	ck_assert_int_eq(pb.first_change_at, 5000);
	ck_assert_int_eq(pb.last_change_at, 5100);
	ck_assert_int_eq(pb.last_change_seen, 5100);
	ck_assert_int_eq(pb.requested_at, 5050);
	ck_assert_int_eq(pb.due_since, 5050);
	ck_assert_int_eq(pb.retry_at, pa.retry_at);
	ck_assert_int_eq(pb.splay_until, pa.splay_until);
	ck_assert_int_eq(pb.retries, pa.retries);
	pb_debounce_init(&b, &dp);
	pb_debounce_seed_starts(&b, (const int64_t[]){ 1000 }, 1);
	pb_debounce_set_pending(&b, &pb);
	/* both let the run go when the throttle does, with the same reason
	 * and queue time */
	pb_debounce_poll(&a, 61000, NULL, NULL, &da);
	pb_debounce_poll(&b, 61000, NULL, NULL, &db);
	ck_assert_int_eq(da.start, 1);
	ck_assert_int_eq(db.start, 1);
	ck_assert_int_eq(db.reason, da.reason);
	ck_assert_int_eq(db.queued_at, 5050);
	/* nothing pending: a missing member is none */
	pb_debounce_pending_from_json(NULL, &pb);
	ck_assert_int_eq(pb.change_pending, 0);
	ck_assert_int_eq(pb.due_since, PB_TIME_NEVER);
	json_decref(j);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("decidelog");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_pending_round_trip);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
