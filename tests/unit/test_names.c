/* test_names.c — the name rules of docs/protocol.md §1, docs/protocol.md §4 at their edges. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "suite_main.h"

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

struct name_case {
	const char *s;
	int ok;		/* 1: the rule takes it, 0: it refuses it */
};

/* One row of a rule's table (rule names it in the message). */
static void check_name(const char *rule, int (*ok)(const char *s), const struct name_case *c)
{
	ck_assert_msg(ok(c->s) == c->ok, "%s '%s' should be %s", rule, c->s,
		      c->ok ? "ok" : "refused");
}

static const struct name_case idents[] = {
	{ "a", 1 }, { "0", 1 }, { "z9", 1 }, { "us-east-1", 1 }, { "a-", 1 }, { "a--b", 1 },
	{ "9-", 1 }, { "seatgeek", 1 },
	{ "", 0 }, { "-a", 0 }, { "A", 0 }, { "aB", 0 }, { "a_b", 0 }, { "a.b", 0 },
	{ "a b", 0 }, { " a", 0 }, { "a ", 0 }, { "*", 0 }, { "#", 0 }, { "a/b", 0 },
	{ "caf\xc3\xa9", 0 }, { "\xc3\xa9", 0 }, { "a\n", 0 }, { "_a", 0 },
};

START_TEST(ident_table)
{
	check_name("ident", pb_name_ident_ok, &idents[_i]);
}
END_TEST

static const struct name_case keys[] = {
	{ "A", 1 }, { "_", 1 }, { "__", 1 }, { "_1", 1 }, { "API_URL", 1 }, { "A1", 1 },
	{ "PRIMARY_DATABASE_URL", 1 }, { "Z9_", 1 },
	{ "", 0 }, { "a", 0 }, { "api_url", 0 }, { "Api", 0 }, { "1A", 0 }, { "9", 0 },
	{ "A-B", 0 }, { "A.B", 0 }, { "A B", 0 }, { "A=B", 0 }, { "$A", 0 }, { "A;", 0 },
	{ "\xc3\x89T\xc3\x89", 0 }, { "A\n", 0 }, { "-A", 0 },
};

START_TEST(key_table)
{
	check_name("key", pb_name_key_ok, &keys[_i]);
}
END_TEST

static const struct name_case services[] = {
	{ "a", 1 }, { "A", 1 }, { "0", 1 }, { "app-www", 1 }, { "api", 1 }, { "S.v_1-x", 1 },
	{ "a.", 1 }, { "a_", 1 }, { "a-", 1 }, { "App.Www_2", 1 },
	{ "", 0 }, { ".a", 0 }, { "_a", 0 }, { "-a", 0 }, { "a/b", 0 }, { "../x", 0 },
	{ "a b", 0 }, { "a:b", 0 }, { "a*", 0 }, { "a#", 0 }, { "caf\xc3\xa9", 0 },
	{ "a\n", 0 }, { "a\\b", 0 },
};

START_TEST(service_table)
{
	check_name("service", pb_name_service_ok, &services[_i]);
}
END_TEST

/* The longest name a rule takes, len bytes (prefix, then c), and one
 * byte more, which it refuses; NULL it refuses too. */
static const struct {
	const char *rule;
	int (*ok)(const char *s);
	size_t max;		/* the rule's PB_*_MAX: must be len */
	const char *prefix;
	char c;
	size_t len;
} lengths[] = {
	{ "ident", pb_name_ident_ok, PB_IDENT_MAX, "a", 'b', 63 },
	{ "ident", pb_name_ident_ok, PB_IDENT_MAX, "1", '-', 63 },
	{ "key", pb_name_key_ok, PB_KEY_MAX, "K", 'X', 128 },
	{ "key", pb_name_key_ok, PB_KEY_MAX, "_", '9', 128 },
	{ "service", pb_name_service_ok, PB_SERVICE_MAX, "s", '.', 128 },
};

START_TEST(length_limit)
{
	char *at = repeat(lengths[_i].prefix, lengths[_i].c, lengths[_i].len - 1);
	char *over = repeat(lengths[_i].prefix, lengths[_i].c, lengths[_i].len);

	ck_assert_uint_eq(strlen(at), lengths[_i].max);
	ck_assert_msg(lengths[_i].ok(at) == 1, "%s of %zu bytes refused", lengths[_i].rule,
		      lengths[_i].len);
	ck_assert_msg(lengths[_i].ok(over) == 0, "%s of %zu bytes taken", lengths[_i].rule,
		      lengths[_i].len + 1);
	ck_assert_msg(lengths[_i].ok(NULL) == 0, "%s NULL taken", lengths[_i].rule);
	free(at);
	free(over);
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
	/* the wire rule: no control but TAB, no DEL, no C1, valid UTF-8 */
	ck_assert_int_eq(pb_value_ok("a\tb", 3), 1);
	ck_assert_int_eq(pb_value_ok("a\x1b[2K", 6), 0);
	ck_assert_int_eq(pb_value_ok("a\x7f", 2), 0);
	ck_assert_int_eq(pb_value_ok("a\xc2\x9b", 3), 0);
	ck_assert_int_eq(pb_value_ok("a\xff", 2), 0);
	ck_assert_int_eq(pb_value_ok("a\xe2\x80\xae", 4), 1);	/* bidi: for the printers */
	{
		char why[80];

		ck_assert_int_eq(pb_value_check("ok\x1b]52", 6, why, sizeof(why)), -1);
		ck_assert_str_eq(why, "control byte 0x1b at offset 2");
		ck_assert_int_eq(pb_value_check(v, PB_VALUE_MAX + 1, why, sizeof(why)), -1);
		ck_assert_str_eq(why, "4097 bytes, more than 4096");
	}
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
	tcase_add_loop_test(tc, key_table, 0, N(keys));
	tcase_add_loop_test(tc, service_table, 0, N(services));
	tcase_add_loop_test(tc, length_limit, 0, N(lengths));
	tcase_add_test(tc, value_rules);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(names_suite());
}
