/* test_jsonpos.c — positions of members found by path. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpos.h"
#include "suite_main.h"

#define MAXP 6

struct pos_case {
	const char *name;
	const char *text;
	const char *path[MAXP];	/* NULL-terminated */
	int rc;			/* 0 found, -1 not */
	int kline, kcol;	/* pb_jsonpos_find */
	int vline, vcol;	/* pb_jsonpos_find_value */
};

static const char nested[] =
	"{\n"
	"  \"x\": \"q\\\"}{\",\n"
	"  \"a\": {\n"
	"    \"b\": [10, {\"c\": true}, [1, 2]]\n"
	"  }\n"
	"}\n";

static const struct pos_case cases[] = {
	{ "flat", "{\"a\": 1}", { "a" }, 0, 1, 2, 1, 7 },
	{ "second member", "{\"a\": 1, \"b\": [1]}", { "b" }, 0, 1, 10, 1, 15 },
	{ "string with escaped quote and braces", nested, { "x" }, 0, 2, 3, 2, 8 },
	{ "nested object", nested, { "a" }, 0, 3, 3, 3, 8 },
	{ "nested array", nested, { "a", "b" }, 0, 4, 5, 4, 10 },
	{ "array element", nested, { "a", "b", "[0]" }, 0, 4, 11, 4, 11 },
	{ "object in array", nested, { "a", "b", "[1]", "c" }, 0, 4, 16, 4, 21 },
	{ "array in array", nested, { "a", "b", "[2]", "[1]" }, 0, 4, 32, 4, 32 },
	{ "root", "  \n {}", { NULL }, 0, 2, 2, 2, 2 },
	{ "array root", "[1, [2, 3]]", { "[1]", "[0]" }, 0, 1, 6, 1, 6 },
	{ "utf-8 counts characters", "{\"\xc3\xa9\": \"\xc3\xbc\", \"k\": 1}", { "k" }, 0, 1, 12, 1,
	  17 },
	{ "escaped quote in key", "{\"a\\\"b\": 1}", { "a\"b" }, 0, 1, 2, 1, 10 },
	{ "unicode escape in key", "{\"x\": 0, \"c\\u0041\": 2}", { "cA" }, 0, 1, 10, 1, 21 },
	{ "surrogate pair in key", "{\"\\ud83d\\ude00\": 1}", { "\xf0\x9f\x98\x80" }, 0, 1, 2, 1,
	  18 },
	{ "index-like key in object", "{\"[0]\": 1}", { "[0]" }, 0, 1, 2, 1, 9 },
	{ "skips nested values", "{\"a\": {\"z\": [1, {\"z\": 2}]}, \"z\": 3}", { "z" }, 0, 1, 29,
	  1, 34 },
	{ "tabs and CRLF", "{\r\n\t\"a\":\r\n\t[true]}", { "a", "[0]" }, 0, 3, 3, 3, 3 },
	{ "missing key", "{\"a\": 1}", { "b" }, -1, 1, 1, 1, 1 },
	{ "index out of range", "{\"a\": [1]}", { "a", "[1]" }, -1, 1, 1, 1, 1 },
	{ "key into an array", "{\"a\": [1]}", { "a", "b" }, -1, 1, 1, 1, 1 },
	{ "into a scalar", "{\"a\": 1}", { "a", "b" }, -1, 1, 1, 1, 1 },
	{ "bad index", "[1]", { "[x]" }, -1, 1, 1, 1, 1 },
	{ "truncated text", "{\"a\": {\"b\": ", { "a", "b" }, -1, 1, 1, 1, 1 },
	{ "broken before the member", "{\"a\" 1, \"b\": 2}", { "b" }, -1, 1, 1, 1, 1 },
	{ "unterminated string", "{\"a\": \"xx, \"b\": 2}", { "b" }, -1, 1, 1, 1, 1 },
	{ "empty text", "", { "a" }, -1, 1, 1, 1, 1 },
};

static size_t path_len(const struct pos_case *c)
{
	size_t n = 0;

	while (n < MAXP && c->path[n])
		n++;
	return n;
}

START_TEST(test_positions)
{
	const struct pos_case *c = &cases[_i];
	size_t n = path_len(c);
	int line = -5, col = -5, rc;

	rc = pb_jsonpos_find(c->text, strlen(c->text), c->path, n, &line, &col);
	ck_assert_msg(rc == c->rc, "%s: find rc %d, want %d", c->name, rc, c->rc);
	ck_assert_msg(line == c->kline && col == c->kcol, "%s: key at %d:%d, want %d:%d",
		      c->name, line, col, c->kline, c->kcol);
	line = col = -5;
	rc = pb_jsonpos_find_value(c->text, strlen(c->text), c->path, n, &line, &col);
	ck_assert_msg(rc == c->rc, "%s: find_value rc %d, want %d", c->name, rc, c->rc);
	ck_assert_msg(line == c->vline && col == c->vcol, "%s: value at %d:%d, want %d:%d",
		      c->name, line, col, c->vline, c->vcol);
}
END_TEST

/* len bounds the scan: text after it is not read */
START_TEST(test_len_bounds)
{
	const char *text = "{\"a\": 1}{\"b\": 2}";
	const char *path[] = { "b" };
	int line, col;

	ck_assert_int_eq(pb_jsonpos_find(text, 8, path, 1, &line, &col), -1);
	ck_assert_int_eq(line, 1);
	ck_assert_int_eq(col, 1);
}
END_TEST

/* deep nesting neither crashes nor overflows */
START_TEST(test_deep)
{
	size_t depth = 100000, i;
	char *text = malloc(2 * depth + 16);
	const char *path[] = { "a" };
	int line, col;

	ck_assert_ptr_nonnull(text);
	text[0] = '{';
	memcpy(text + 1, "\"z\":", 4);
	for (i = 0; i < depth; i++)
		text[5 + i] = '[';
	for (i = 0; i < depth; i++)
		text[5 + depth + i] = ']';
	memcpy(text + 5 + 2 * depth, ",\"a\":1}", 8);
	ck_assert_int_eq(pb_jsonpos_find(text, strlen(text), path, 1, &line, &col), -1);
	free(text);
}
END_TEST

static Suite *jsonpos_suite(void)
{
	Suite *s = suite_create("jsonpos");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_positions, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_len_bounds);
	tcase_add_test(tc, test_deep);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(jsonpos_suite());
}
