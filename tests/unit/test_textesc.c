/* test_textesc.c — untrusted text for a terminal (textesc.h): what is
 * escaped and how, what is copied as it is, the wire rule
 * pb_textesc_check, and the JSON post-pass pb_textesc_json. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "textesc.h"
#include "suite_main.h"

/* ---- escaping ---- */

static const struct {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	int newline;		/* allow_newline */
	const char *out;
} escapes[] = {
	{ "plain text, 10.0.3.7:1100", 0, 0, "plain text, 10.0.3.7:1100" },
	{ "tab\tstays", 0, 0, "tab\tstays" },
	{ "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 0, 0, "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80" },
	/* ESC [ 1A ESC [ 2K: cursor up, erase line */
	{ "\x1b[1A\x1b[2K", 0, 0, "\\x1b[1A\\x1b[2K" },
	/* OSC 52 (clipboard write), ended by BEL */
	{ "\x1b]52;c;Y3VybA==\x07", 0, 0, "\\x1b]52;c;Y3VybA==\\x07" },
	{ "a\nb\rc", 0, 0, "a\\x0ab\\x0dc" },
	{ "a\nb\rc", 0, 1, "a\nb\\x0dc" },
	{ "del\x7f", 0, 0, "del\\x7f" },
	{ "nul\0x", 5, 0, "nul\\x00x" },
	/* C1 controls in UTF-8: CSI U+009B, NEL U+0085 */
	{ "\xc2\x9b" "2J", 0, 0, "\\u009b2J" },
	{ "\xc2\x85", 0, 0, "\\u0085" },
	{ "\xc2\xa0nbsp", 0, 0, "\xc2\xa0nbsp" },	/* U+00A0 is text */
	/* bidi formatting: RLO U+202E, LRI U+2066, ALM U+061C */
	{ "api\xe2\x80\xae" "30", 0, 0, "api\\u202e30" },
	{ "\xe2\x81\xa6x", 0, 0, "\\u2066x" },
	{ "\xd8\x9c", 0, 0, "\\u061c" },
	/* invalid UTF-8: lone bytes, cut, overlong, surrogate, > U+10FFFF */
	{ "\xff\xfe", 0, 0, "\\xff\\xfe" },
	{ "a\xe2\x82", 0, 0, "a\\xe2\\x82" },
	{ "\xc0\xaf", 0, 0, "\\xc0\\xaf" },
	{ "\xc1\x9b", 0, 0, "\\xc1\\x9b" },	/* overlong CSI */
	{ "\xe0\x80\xaf", 0, 0, "\\xe0\\x80\\xaf" },
	{ "\xed\xa0\x80", 0, 0, "\\xed\\xa0\\x80" },
	{ "\xf4\x90\x80\x80", 0, 0, "\\xf4\\x90\\x80\\x80" },
	{ "\x9b", 0, 0, "\\x9b" },	/* a raw 8-bit CSI byte */
	{ "", 0, 0, "" },
};

START_TEST(escape_table)
{
	const char *in = escapes[_i].in;
	size_t len = escapes[_i].len ? escapes[_i].len : strlen(in);
	char *out = pb_textesc_dup(in, len, escapes[_i].newline);

	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, escapes[_i].out);
	ck_assert(pb_textesc_clean(in, len, escapes[_i].newline) == !strcmp(in, escapes[_i].out));
	free(out);
}
END_TEST

/* pb_textesc_write and pb_textesc_fputs write what pb_textesc_dup gives. */
START_TEST(write_matches_dup)
{
	char *mem = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&mem, &size);

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		size_t len = escapes[i].len ? escapes[i].len : strlen(escapes[i].in);

		ck_assert_int_eq(pb_textesc_write(f, escapes[i].in, len, escapes[i].newline), 0);
		fputc('|', f);
	}
	ck_assert_int_eq(pb_textesc_fputs(f, "\x1b[31mred"), 0);
	ck_assert_int_eq(pb_textesc_fputs(f, NULL), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(mem, "|\\x1b[1A\\x1b[2K|"));
	ck_assert_ptr_nonnull(strstr(mem, "|a\nb\\x0dc|"));
	ck_assert_ptr_nonnull(strstr(mem, "|\\x1b[31mred"));
	ck_assert_ptr_null(memchr(mem, 0x1b, size));
	ck_assert_ptr_null(memchr(mem, 0x7f, size));
	free(mem);
}
END_TEST

/* Every byte value alone and after a lead byte: the output never holds a
 * C0 control but TAB, DEL, a C1 control or invalid UTF-8. */
START_TEST(no_byte_gets_through)
{
	static const unsigned char leads[] = { 'a', 0xc0, 0xc2, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xff };
	unsigned char in[3];

	for (size_t l = 0; l < sizeof(leads); l++)
		for (int b = 0; b < 0x100; b++) {
			in[0] = leads[l];
			in[1] = (unsigned char)b;
			in[2] = 0x80;
			char *out = pb_textesc_dup((const char *)in, 3, false);

			ck_assert_ptr_nonnull(out);
			ck_assert_int_eq(pb_textesc_check(out, strlen(out), NULL, 0, NULL), 0);
			free(out);
		}
}
END_TEST

/* ---- the wire rule ---- */

static const struct {
	const char *in;
	size_t len;
	const char *why;	/* NULL: passes */
	size_t at;
} checks[] = {
	{ "http://10.0.3.7:1100", 0, NULL, 0 },
	{ "tab\tok, caf\xc3\xa9, \xe2\x80\xae bidi is for the printers", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "\x1b[2K", 0, "control byte 0x1b at offset 0", 0 },
	{ "ok\x1b]52;c;eA==\x07", 0, "control byte 0x1b at offset 2", 2 },
	{ "ok]52;c;eA==\x07", 0, "control byte 0x07 at offset 12", 12 },
	{ "a\nb", 0, "control byte 0x0a at offset 1", 1 },
	{ "a\rb", 0, "control byte 0x0d at offset 1", 1 },
	{ "a\0b", 3, "control byte 0x00 at offset 1", 1 },
	{ "del\x7f", 0, "control byte 0x7f at offset 3", 3 },
	{ "\x1f", 0, "control byte 0x1f at offset 0", 0 },
	{ "x\xc2\x9b", 0, "C1 control U+009B at offset 1", 1 },
	{ "\xc2\x80", 0, "C1 control U+0080 at offset 0", 0 },
	{ "\xc2\x9f", 0, "C1 control U+009F at offset 0", 0 },
	{ "\xc2\xa0", 0, NULL, 0 },
	{ "ab\xff", 0, "invalid UTF-8 byte 0xff at offset 2", 2 },
	{ "\xc0\xaf", 0, "invalid UTF-8 byte 0xc0 at offset 0", 0 },
	{ "\xc1\x9b", 0, "invalid UTF-8 byte 0xc1 at offset 0", 0 },
	{ "\xe0\x80\x80", 0, "invalid UTF-8 byte 0xe0 at offset 0", 0 },
	{ "\xed\xb0\x80", 0, "invalid UTF-8 byte 0xed at offset 0", 0 },
	{ "\xf4\x90\x80\x80", 0, "invalid UTF-8 byte 0xf4 at offset 0", 0 },
	{ "\xf0\x9f\x98", 0, "invalid UTF-8 byte 0xf0 at offset 0", 0 },
	{ "\x9b", 0, "invalid UTF-8 byte 0x9b at offset 0", 0 },
};

START_TEST(check_table)
{
	const char *in = checks[_i].in;
	size_t len = checks[_i].len ? checks[_i].len : strlen(in), at = 999;
	char why[80] = "untouched";
	int rc = pb_textesc_check(in, len, why, sizeof(why), &at);

	if (!checks[_i].why) {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(why, "untouched");
		ck_assert_uint_eq(at, 999);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(why, checks[_i].why);
		ck_assert_uint_eq(at, checks[_i].at);
	}
	/* no why buffer is fine */
	ck_assert_int_eq(pb_textesc_check(in, len, NULL, 0, NULL), rc);
}
END_TEST

START_TEST(utf8_valid_prefix)
{
	ck_assert_uint_eq(pb_textesc_utf8_valid("abc", 3), 3);
	ck_assert_uint_eq(pb_textesc_utf8_valid("a\x1b\x7f", 3), 3);	/* controls are UTF-8 */
	ck_assert_uint_eq(pb_textesc_utf8_valid("caf\xc3\xa9\xff", 6), 5);
	ck_assert_uint_eq(pb_textesc_utf8_valid("\xe2\x98", 2), 0);
	ck_assert_uint_eq(pb_textesc_utf8_valid("", 0), 0);
}
END_TEST

/* ---- JSON post-pass ---- */

START_TEST(json_post_pass)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "del", "a\x7f", "c1", "x\xc2\x9b",
			      "bidi", "api\xe2\x80\xae" "30", "ok", "caf\xc3\xa9 \x1b");
	char *raw = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS), *safe;
	json_error_t jerr;
	json_t *back;

	ck_assert_ptr_nonnull(raw);
	/* jansson leaves DEL and C1 raw: the reason for the post-pass */
	ck_assert_ptr_nonnull(strchr(raw, 0x7f));
	safe = pb_textesc_json(raw);
	ck_assert_ptr_nonnull(safe);
	ck_assert_str_eq(safe, "{\"bidi\":\"api\\u202e30\",\"c1\":\"x\\u009b\","
			       "\"del\":\"a\\u007f\",\"ok\":\"caf\xc3\xa9 \\u001B\"}");
	/* the same JSON value */
	back = json_loads(safe, 0, &jerr);
	ck_assert_ptr_nonnull(back);
	ck_assert(json_equal(o, back));
	json_decref(back);
	free(safe);
	free(raw);
	json_decref(o);

	/* invalid UTF-8 (not from jansson) becomes the text \xNN */
	safe = pb_textesc_json("[\"a\xff\"]");
	ck_assert_str_eq(safe, "[\"a\\\\xff\"]");
	back = json_loads(safe, 0, &jerr);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(json_string_value(json_array_get(back, 0)), "a\\xff");
	json_decref(back);
	free(safe);
	ck_assert_ptr_null(pb_textesc_json(NULL));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *textesc_suite(void)
{
	Suite *s = suite_create("textesc");
	TCase *tc = tcase_create("textesc");

	tcase_add_loop_test(tc, escape_table, 0, N(escapes));
	tcase_add_test(tc, write_matches_dup);
	tcase_add_test(tc, no_byte_gets_through);
	tcase_add_loop_test(tc, check_table, 0, N(checks));
	tcase_add_test(tc, utf8_valid_prefix);
	tcase_add_test(tc, json_post_pass);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(textesc_suite());
}
