/* test_strv.c — vectors of strings: the qsort/bsearch comparator and the
 * free (run the suite under valgrind: make valgrind-check). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "suite_main.h"

START_TEST(test_sort_and_search)
{
	const char *v[] = { "REGION", "API_URL", "B", "A", "API" };
	const char *want[] = { "A", "API", "API_URL", "B", "REGION" };
	const char *key = "API_URL", *missing = "API_UR";
	size_t n = sizeof(v) / sizeof(v[0]);

	qsort(v, n, sizeof(*v), pb_strv_cmp);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(v[i], want[i]);
	ck_assert_ptr_nonnull(bsearch(&key, v, n, sizeof(*v), pb_strv_cmp));
	ck_assert_ptr_null(bsearch(&missing, v, n, sizeof(*v), pb_strv_cmp));
	ck_assert_int_lt(pb_strv_cmp(&v[0], &v[1]), 0);
	ck_assert_int_eq(pb_strv_cmp(&v[2], &v[2]), 0);
}
END_TEST

START_TEST(test_free)
{
	char **v = calloc(4, sizeof(*v));

	ck_assert_ptr_nonnull(v);
	v[0] = strdup("a");
	v[2] = strdup("c");	/* v[1] NULL: allowed */
	pb_strv_free(v, 3);
	pb_strv_free(NULL, 5);
	pb_strv_free(calloc(1, sizeof(char *)), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("strv");
	TCase *tc = tcase_create("strv");

	tcase_add_test(tc, test_sort_and_search);
	tcase_add_test(tc, test_free);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
