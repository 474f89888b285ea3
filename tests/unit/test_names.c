/* test_names.c — the name rules of SPEC §3 and §5 at their edges. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

/* A string of n copies of c after the prefix (malloc'd). */
static char *repeat(const char *prefix, char c, size_t n)
{
	size_t p = strlen(prefix);
	char *s = malloc(p + n + 1);

	memcpy(s, prefix, p);
	memset(s + p, c, n);
	s[p + n] = '\0';
	return s;
}

static const struct {
	const char *s;
	int ok;
} idents[] = {
	{ "a", 1 }, { "0", 1 }, { "z9", 1 }, { "us-east-1", 1 }, { "a-", 1 }, { "a--b", 1 },
	{ "9-", 1 }, { "seatgeek", 1 },
	{ "", 0 }, { "-a", 0 }, { "A", 0 }, { "aB", 0 }, { "a_b", 0 }, { "a.b", 0 },
	{ "a b", 0 }, { " a", 0 }, { "a ", 0 }, { "*", 0 }, { "#", 0 }, { "a/b", 0 },
	{ "caf\xc3\xa9", 0 }, { "\xc3\xa9", 0 }, { "a\n", 0 }, { "_a", 0 },
};

START_TEST(ident_table)
{
	ck_assert_msg(pb_name_ident_ok(idents[_i].s) == idents[_i].ok, "'%s' should be %s",
		      idents[_i].s, idents[_i].ok ? "ok" : "refused");
}
END_TEST

START_TEST(ident_length)
{
	char *s63 = repeat("a", 'b', 62), *s64 = repeat("a", 'b', 63);
	char *d63 = repeat("1", '-', 62), *d64 = repeat("1", '-', 63);

	ck_assert_uint_eq(strlen(s63), PB_IDENT_MAX);
	ck_assert_int_eq(pb_name_ident_ok(s63), 1);
	ck_assert_int_eq(pb_name_ident_ok(s64), 0);
	ck_assert_int_eq(pb_name_ident_ok(d63), 1);
	ck_assert_int_eq(pb_name_ident_ok(d64), 0);
	ck_assert_int_eq(pb_name_ident_ok(NULL), 0);
	free(s63);
	free(s64);
	free(d63);
	free(d64);
}
END_TEST

static const struct {
	const char *s;
	int ok;
} keys[] = {
	{ "A", 1 }, { "_", 1 }, { "__", 1 }, { "_1", 1 }, { "API_URL", 1 }, { "A1", 1 },
	{ "PRIMARY_DATABASE_URL", 1 }, { "Z9_", 1 },
	{ "", 0 }, { "a", 0 }, { "api_url", 0 }, { "Api", 0 }, { "1A", 0 }, { "9", 0 },
	{ "A-B", 0 }, { "A.B", 0 }, { "A B", 0 }, { "A=B", 0 }, { "$A", 0 }, { "A;", 0 },
	{ "\xc3\x89T\xc3\x89", 0 }, { "A\n", 0 }, { "-A", 0 },
};

START_TEST(key_table)
{
	ck_assert_msg(pb_name_key_ok(keys[_i].s) == keys[_i].ok, "'%s' should be %s", keys[_i].s,
		      keys[_i].ok ? "ok" : "refused");
}
END_TEST

START_TEST(key_length)
{
	char *k128 = repeat("K", 'X', 127), *k129 = repeat("K", 'X', 128);
	char *u128 = repeat("_", '9', 127), *u129 = repeat("_", '9', 128);

	ck_assert_uint_eq(strlen(k128), PB_KEY_MAX);
	ck_assert_int_eq(pb_name_key_ok(k128), 1);
	ck_assert_int_eq(pb_name_key_ok(k129), 0);
	ck_assert_int_eq(pb_name_key_ok(u128), 1);
	ck_assert_int_eq(pb_name_key_ok(u129), 0);
	ck_assert_int_eq(pb_name_key_ok(NULL), 0);
	free(k128);
	free(k129);
	free(u128);
	free(u129);
}
END_TEST

static const struct {
	const char *s;
	int ok;
} services[] = {
	{ "a", 1 }, { "A", 1 }, { "0", 1 }, { "app-www", 1 }, { "api", 1 }, { "S.v_1-x", 1 },
	{ "a.", 1 }, { "a_", 1 }, { "a-", 1 }, { "App.Www_2", 1 },
	{ "", 0 }, { ".a", 0 }, { "_a", 0 }, { "-a", 0 }, { "a/b", 0 }, { "../x", 0 },
	{ "a b", 0 }, { "a:b", 0 }, { "a*", 0 }, { "a#", 0 }, { "caf\xc3\xa9", 0 },
	{ "a\n", 0 }, { "a\\b", 0 },
};

START_TEST(service_table)
{
	ck_assert_msg(pb_name_service_ok(services[_i].s) == services[_i].ok, "'%s' should be %s",
		      services[_i].s, services[_i].ok ? "ok" : "refused");
}
END_TEST

START_TEST(service_length)
{
	char *s128 = repeat("s", '.', 127), *s129 = repeat("s", '.', 128);

	ck_assert_uint_eq(strlen(s128), PB_SERVICE_MAX);
	ck_assert_int_eq(pb_name_service_ok(s128), 1);
	ck_assert_int_eq(pb_name_service_ok(s129), 0);
	ck_assert_int_eq(pb_name_service_ok(NULL), 0);
	free(s128);
	free(s129);
}
END_TEST

START_TEST(value_rules)
{
	char *v = repeat("", 'x', PB_VALUE_MAX + 1);

	ck_assert_int_eq(pb_value_ok("", 0), 1);
	{
		const char *ok = "http://a:1 'q' \"$x\" \t caf\xc3\xa9";
		ck_assert_int_eq(pb_value_ok(ok, strlen(ok)), 1);
	}
	ck_assert_int_eq(pb_value_ok(v, PB_VALUE_MAX), 1);
	ck_assert_int_eq(pb_value_ok(v, PB_VALUE_MAX + 1), 0);
	ck_assert_int_eq(pb_value_ok("a\nb", 3), 0);
	ck_assert_int_eq(pb_value_ok("a\rb", 3), 0);
	ck_assert_int_eq(pb_value_ok("a\0b", 3), 0);
	ck_assert_int_eq(pb_value_ok("\n", 1), 0);
	ck_assert_int_eq(pb_value_ok("ab\n", 2), 1);	/* only len bytes count */
	/* the rule at the limit's last byte */
	v[PB_VALUE_MAX - 1] = '\n';
	ck_assert_int_eq(pb_value_ok(v, PB_VALUE_MAX), 0);
	v[PB_VALUE_MAX - 1] = '\0';
	ck_assert_int_eq(pb_value_ok(v, PB_VALUE_MAX), 0);
	free(v);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *names_suite(void)
{
	Suite *s = suite_create("names");
	TCase *tc = tcase_create("rules");

	tcase_add_loop_test(tc, ident_table, 0, N(idents));
	tcase_add_test(tc, ident_length);
	tcase_add_loop_test(tc, key_table, 0, N(keys));
	tcase_add_test(tc, key_length);
	tcase_add_loop_test(tc, service_table, 0, N(services));
	tcase_add_test(tc, service_length);
	tcase_add_test(tc, value_rules);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(names_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
