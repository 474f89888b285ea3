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

int main(void)
{
	Suite *s = suite_create("decidelog");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_defaults);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
