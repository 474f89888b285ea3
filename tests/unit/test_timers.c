/* test_timers.c — lib/timers.h: the named deadlines the consumer's loop
 * sleeps on (one clock; the earliest wins; poll()'s timeout). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "timers.h"
#include "suite_main.h"

enum { A, B, C, LAST = PB_TIMERS_MAX - 1 };

START_TEST(test_empty)
{
	struct pb_timers t;
	int id = 7;

	pb_timers_init(&t);
	ck_assert(pb_timers_next(&t, &id) == PB_TIMER_NONE);
	ck_assert_int_eq(id, -1);
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 1000, 60000), 60000);
	ck_assert_int_eq(pb_timers_due(&t, A, INT64_MAX - 1), 0);
	ck_assert(pb_timers_at(&t, LAST) == PB_TIMER_NONE);
}
END_TEST

START_TEST(test_earliest)
{
	struct pb_timers t;
	int id;

	pb_timers_init(&t);
	pb_timers_set(&t, A, 5000);
	pb_timers_set(&t, B, 3000);
	pb_timers_set(&t, LAST, 4000);
	ck_assert(pb_timers_next(&t, &id) == 3000);
	ck_assert_int_eq(id, B);
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 1000, 60000), 2000);
	ck_assert_int_eq(pb_timers_due(&t, B, 2999), 0);
	ck_assert_int_eq(pb_timers_due(&t, B, 3000), 1);
	ck_assert_int_eq(pb_timers_due(&t, A, 3000), 0);
	/* cleared: the next one takes over */
	pb_timers_clear(&t, B);
	ck_assert(pb_timers_next(&t, &id) == 4000);
	ck_assert_int_eq(id, LAST);
	/* moved later, then earlier: the last registration counts */
	pb_timers_set(&t, LAST, 9000);
	ck_assert(pb_timers_next(&t, &id) == 5000);
	ck_assert_int_eq(id, A);
	pb_timers_set(&t, LAST, 100);
	ck_assert(pb_timers_next(&t, &id) == 100);
	/* a tie: the lowest slot */
	pb_timers_set(&t, C, 100);
	ck_assert(pb_timers_next(&t, &id) == 100);
	ck_assert_int_eq(id, C);
}
END_TEST

START_TEST(test_timeout)
{
	struct pb_timers t;

	pb_timers_init(&t);
	pb_timers_set(&t, A, 1000);
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 1000, 60000), 0);	/* due now */
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 5000, 60000), 0);	/* overdue */
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 999, 60000), 1);
	pb_timers_set(&t, A, 1000 + 3600000);
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 1000, 60000), 60000);	/* capped */
	pb_timers_set(&t, A, INT64_MAX - 1);	/* far away: no overflow */
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 0, 60000), 60000);
	ck_assert_int_eq(pb_timers_timeout_ms(&t, 0, -5), 0);
}
END_TEST

START_TEST(test_wall)
{
	struct pb_timers t;

	pb_timers_init(&t);
	/* wall 1,000,000 now, mono 50: a wall deadline 700 ms ahead */
	pb_timers_set_wall(&t, A, 1000700, 1000000, 50);
	ck_assert(pb_timers_at(&t, A) == 750);
	/* already past on the wall clock: due now */
	pb_timers_set_wall(&t, B, 999000, 1000000, 50);
	ck_assert(pb_timers_at(&t, B) == 50);
	ck_assert_int_eq(pb_timers_due(&t, B, 50), 1);
	/* none */
	pb_timers_set_wall(&t, A, PB_TIMER_NONE, 1000000, 50);
	ck_assert(pb_timers_at(&t, A) == PB_TIMER_NONE);
}
END_TEST

START_TEST(test_out_of_range)
{
	struct pb_timers t;

	pb_timers_init(&t);
	pb_timers_set(&t, -1, 5);
	pb_timers_set(&t, PB_TIMERS_MAX, 5);
	pb_timers_name(&t, PB_TIMERS_MAX, "x");
	ck_assert(pb_timers_next(&t, NULL) == PB_TIMER_NONE);
	ck_assert(pb_timers_at(&t, PB_TIMERS_MAX) == PB_TIMER_NONE);
	ck_assert_int_eq(pb_timers_due(&t, -1, 10), 0);
	pb_timers_name(&t, A, "reload");
	ck_assert_str_eq(t.name[A], "reload");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timers");
	TCase *tc = tcase_create("list");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_earliest);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_wall);
	tcase_add_test(tc, test_out_of_range);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
