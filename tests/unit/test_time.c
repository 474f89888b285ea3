/* test_time.c — clocks, RFC 3339 text and the relative forms of the CLI. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbtime.h"
#include "suite_main.h"

#define T_2026 1795316400000LL	/* 2026-11-22T03:00:00Z */

START_TEST(clocks)
{
	int64_t now = pb_now_ms(), sys = (int64_t)time(NULL) * 1000;
	int64_t m1 = pb_mono_ms(), m2;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	ck_assert_int_ge(now, sys - 2000);
	ck_assert_int_le(now, sys + 2000);
	nanosleep(&ts, NULL);
	m2 = pb_mono_ms();
	ck_assert_int_ge(m2 - m1, 19);
	ck_assert_int_lt(m2 - m1, 5000);
}
END_TEST

static const struct {
	int64_t ms;
	const char *text;
} formats[] = {
	{ 0, "1970-01-01T00:00:00.000Z" },
	{ 1, "1970-01-01T00:00:00.001Z" },
	{ 999, "1970-01-01T00:00:00.999Z" },
	{ -1, "1969-12-31T23:59:59.999Z" },
	{ -1000, "1969-12-31T23:59:59.000Z" },
	{ -1001, "1969-12-31T23:59:58.999Z" },
	{ T_2026, "2026-11-22T03:00:00.000Z" },
	{ T_2026 + 123, "2026-11-22T03:00:00.123Z" },
	{ 1709164800000LL, "2024-02-29T00:00:00.000Z" },	/* leap day */
	{ 253402300799999LL, "9999-12-31T23:59:59.999Z" },
};

START_TEST(format_and_back)
{
	struct pb_err err = PB_ERR_INIT;
	char buf[PB_TIME_BUF];
	int64_t back;

	ck_assert_ptr_eq(pb_time_format(formats[_i].ms, buf), buf);
	ck_assert_str_eq(buf, formats[_i].text);
	ck_assert_msg(pb_time_parse_rfc3339(buf, &back, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(back, formats[_i].ms);
	ck_assert_int_eq(pb_time_parse(buf, 0, &back, &err), 0);
	ck_assert_int_eq(back, formats[_i].ms);
}
END_TEST

/* Every millisecond value of a stretch formats and parses back. */
START_TEST(round_trip_sweep)
{
	struct pb_err err = PB_ERR_INIT;
	char buf[PB_TIME_BUF];
	int64_t ms, back;

	for (ms = T_2026 - 5000; ms < T_2026 + 5000; ms += 7) {
		pb_time_format(ms, buf);
		ck_assert_int_eq(pb_time_parse_rfc3339(buf, &back, &err), 0);
		ck_assert_int_eq(back, ms);
	}
	for (ms = -3000; ms < 3000; ms++) {
		pb_time_format(ms, buf);
		ck_assert_int_eq(pb_time_parse_rfc3339(buf, &back, &err), 0);
		ck_assert_int_eq(back, ms);
	}
}
END_TEST

static const struct {
	const char *text;
	int64_t ms;
} parses[] = {
	{ "2026-11-22T03:00:00Z", T_2026 },
	{ "2026-11-22T03:00:00z", T_2026 },
	{ "2026-11-22t03:00:00Z", T_2026 },
	{ "2026-11-22 03:00:00Z", T_2026 },
	{ "2026-11-22T03:00:00+00:00", T_2026 },
	{ "2026-11-22T03:00:00-00:00", T_2026 },
	{ "2026-11-22T05:00:00+02:00", T_2026 },
	{ "2026-11-21T22:00:00-05:00", T_2026 },
	{ "2026-11-22T08:30:00+05:30", T_2026 },
	{ "2026-11-22T03:00:00.1Z", T_2026 + 100 },
	{ "2026-11-22T03:00:00.12Z", T_2026 + 120 },
	{ "2026-11-22T03:00:00.123Z", T_2026 + 123 },
	{ "2026-11-22T03:00:00.123456789Z", T_2026 + 123 },	/* truncated to ms */
	{ "2026-11-22T03:00:00.999999Z", T_2026 + 999 },
	{ "2026-11-22T05:00:00.5+02:00", T_2026 + 500 },
	{ "2026-11-22T03:00:00.000Z", T_2026 },
	{ "2026-11-22T23:59:59Z", T_2026 + (20 * 3600 + 59 * 60 + 59) * 1000LL },
	{ "2026-11-23T00:00:00+14:00", T_2026 + 7 * 3600 * 1000LL },
	{ "1970-01-01T00:00:00Z", 0 },
};

START_TEST(parse_rfc3339)
{
	struct pb_err err = PB_ERR_INIT;
	int64_t ms = -42;

	ck_assert_msg(pb_time_parse_rfc3339(parses[_i].text, &ms, &err) == 0, "%s: %s",
		      parses[_i].text, err.msg);
	ck_assert_int_eq(ms, parses[_i].ms);
	/* the general parser takes them as they are, whatever now is */
	ms = -42;
	ck_assert_int_eq(pb_time_parse(parses[_i].text, 12345, &ms, &err), 0);
	ck_assert_int_eq(ms, parses[_i].ms);
	ck_assert_int_eq(err.code, 0);
}
END_TEST

static const struct {
	const char *text;
	int64_t delta;
} relatives[] = {
	{ "-2h", -2 * 3600000LL },
	{ "-15m", -15 * 60000LL },
	{ "-30s", -30000 },
	{ "-1d", -86400000LL },
	{ "-500ms", -500 },
	{ "-0s", 0 },
	{ "+2h", 2 * 3600000LL },
	{ "+1d", 86400000LL },
	{ "-36500d", -36500 * 86400000LL },
	{ "now", 0 },
};

START_TEST(parse_relative)
{
	struct pb_err err = PB_ERR_INIT;
	int64_t now = T_2026 + 777, ms = -42;

	ck_assert_msg(pb_time_parse(relatives[_i].text, now, &ms, &err) == 0, "%s: %s",
		      relatives[_i].text, err.msg);
	ck_assert_int_eq(ms, now + relatives[_i].delta);
}
END_TEST

static const char *const bad_times[] = {
	"",
	"yesterday",
	"2026",
	"2026-11",
	"2026-11-22T",
	"2026-11-22T03",
	"2026-11-22T3:00:00Z",
	"26-11-22T03:00:00Z",
	"2026/11/22T03:00:00Z",
	"2026-00-22T03:00:00Z",
	"2026-13-22T03:00:00Z",
	"2026-11-00T03:00:00Z",
	"2026-11-32T03:00:00Z",
	"2026-11-22T24:00:00Z",
	"2026-11-22T03:60:00Z",
	"2026-11-22T03:00:61Z",
	"2026-11-22T03:00:00.Z",
	"2026-11-22T03:00:00+0200",
	"2026-11-22T03:00:00+02",
	"2026-11-22T03:00:00Zjunk",
	"2026-11-22T03:00:00Z ",
	" 2026-11-22T03:00:00Z",
	"2026-11-22T03:00:00 Z",
	"2026-11-22X03:00:00Z",
	"-2x",
	"-2",
	"-h",
	"-",
	"+",
	"2h",
	"- 2h",
	"-2h ",
	"-2 h",
	"-1.5h",
	"--2h",
	"-2H",
	"-2hours",
	"NOW",
	"-99999999999999999999d",
	"-9223372036854775807ms",
	"-106751991167d",	/* overflows int64 ms */
};

START_TEST(parse_bad)
{
	struct pb_err err = PB_ERR_INIT;
	char want[128];
	int64_t ms = -42;

	ck_assert_msg(pb_time_parse(bad_times[_i], T_2026, &ms, &err) == -1, "accepted '%s' as %lld",
		      bad_times[_i], (long long)ms);
	ck_assert_int_eq(err.code, EX_USAGE);
	snprintf(want, sizeof(want), "'%s'", bad_times[_i]);
	ck_assert_msg(strstr(err.msg, want), "%s does not name %s", err.msg, want);
	ck_assert_msg(strstr(err.msg, "RFC 3339") && strstr(err.msg, "-2h"),
		      "%s does not say what is accepted", err.msg);
	/* relative forms are not RFC 3339 either */
	pb_err_clear(&err);
	ck_assert_int_eq(pb_time_parse_rfc3339(bad_times[_i], &ms, &err), -1);
	ck_assert_int_eq(err.code, EX_USAGE);
	ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
}
END_TEST

START_TEST(rfc3339_refuses_relative)
{
	struct pb_err err = PB_ERR_INIT;
	int64_t ms;

	ck_assert_int_eq(pb_time_parse_rfc3339("-2h", &ms, &err), -1);
	ck_assert_int_eq(pb_time_parse_rfc3339("now", &ms, &err), -1);
	ck_assert_int_eq(err.code, EX_USAGE);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *time_suite(void)
{
	Suite *s = suite_create("pbtime");
	TCase *tc = tcase_create("time");

	tcase_add_test(tc, clocks);
	tcase_add_loop_test(tc, format_and_back, 0, N(formats));
	tcase_add_test(tc, round_trip_sweep);
	tcase_add_loop_test(tc, parse_rfc3339, 0, N(parses));
	tcase_add_loop_test(tc, parse_relative, 0, N(relatives));
	tcase_add_loop_test(tc, parse_bad, 0, N(bad_times));
	tcase_add_test(tc, rfc3339_refuses_relative);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(time_suite());
}
