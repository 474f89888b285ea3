/* test_streamend.c — where a history catch-up ends (lib/streamend.h), with
 * explicit times: the end is an offset fixed at the start, never a pause
 * in delivery (the bug: a 500 ms silence on a loaded broker ended a
 * catch-up after 4,075 of 100,000 messages). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "streamend.h"
#include "suite_main.h"

static const struct pb_stream_end_limits lim = { 250, 2000, 2000, 30000 };

/* the main consumer delivers offsets [a, b], one a millisecond from t */
static int64_t main_range(struct pb_stream_end *s, int64_t a, int64_t b, int64_t t)
{
	for (int64_t o = a; o <= b; o++, t++)
		pb_stream_end_main(s, o, t);
	return t;
}

START_TEST(pause_is_not_the_end)
{
	struct pb_stream_end s;
	int64_t t;

	pb_stream_end_init(&s, 0, 1000, -1);
	for (int64_t o = 99000; o <= 99999; o++)
		pb_stream_end_probe(&s, o, 2000, 10);	/* the last chunk, at once */
	t = main_range(&s, 0, 4074, 20);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_target(&s), 99999);
	/* the broker pauses 20 s: far past any quiet rule, not past the net */
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t + 20000), PB_STREAM_READING);
	t = main_range(&s, 4075, 99998, t + 20000);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t), PB_STREAM_READING);
	pb_stream_end_main(&s, 99999, t);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t), PB_STREAM_END);
}
END_TEST

START_TEST(burst_still_running)
{
	struct pb_stream_end s;

	pb_stream_end_init(&s, 0, 0, -1);
	pb_stream_end_probe(&s, 10, 0, 5);
	pb_stream_end_probe(&s, 11, 0, 100);
	main_range(&s, 0, 11, 100);
	/* the main consumer is at the probe's highest, but the burst may go on */
	ck_assert_int_eq(pb_stream_end_target(&s), -1);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 349), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_deadline(&s, &lim), 350);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 350), PB_STREAM_END);
}
END_TEST

START_TEST(busy_stream_next_is_exact)
{
	struct pb_stream_end s;
	int64_t t = 1;

	pb_stream_end_init(&s, 0, 0, -1);
	/* the "last" probe never pauses: new messages keep coming */
	for (int64_t o = 500; o < 3000; o++, t++)
		pb_stream_end_probe(&s, o, 0, t);
	pb_stream_end_next(&s, 700);
	pb_stream_end_next(&s, 701);	/* only the first counts */
	ck_assert_int_eq(pb_stream_end_target(&s), 699);
	main_range(&s, 0, 698, 10);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t), PB_STREAM_READING);
	pb_stream_end_main(&s, 699, t);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, t), PB_STREAM_END);
}
END_TEST

START_TEST(late_probe_messages)
{
	struct pb_stream_end s;

	pb_stream_end_init(&s, 0, 0, -1);
	pb_stream_end_probe(&s, 50, 0, 1);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 300), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_target(&s), 50);
	/* past the burst: newer messages do not move the end ... */
	pb_stream_end_probe(&s, 60, 0, 400);
	ck_assert_int_eq(pb_stream_end_target(&s), 50);
	/* ... unless the "next" probe shows they predate the start */
	pb_stream_end_next(&s, 80);
	pb_stream_end_probe(&s, 70, 0, 401);
	ck_assert_int_eq(pb_stream_end_target(&s), 79);
}
END_TEST

START_TEST(empty_stream)
{
	struct pb_stream_end s;

	pb_stream_end_init(&s, 100, 0, -1);
	ck_assert_int_eq(pb_stream_end_deadline(&s, &lim), 2100);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 2099), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 2100), PB_STREAM_EMPTY);
	/* known not empty (a message count): a slow broker is no empty stream */
	pb_stream_end_init(&s, 100, 0, -1);
	s.nonempty = 1;
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 10000), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_deadline(&s, &lim), 30100);
	/* not empty once the main consumer had something: wait for the probe */
	pb_stream_end_init(&s, 100, 0, -1);
	pb_stream_end_main(&s, 0, 150);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 5000), PB_STREAM_READING);
	/* the "next" probe at offset 0: the stream was empty at the start */
	pb_stream_end_init(&s, 100, 0, -1);
	pb_stream_end_next(&s, 0);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 101), PB_STREAM_END);
}
END_TEST

START_TEST(read_already)
{
	struct pb_stream_end s;

	/* reading from offset 500 (reached last time); the stream ends at 499 */
	pb_stream_end_init(&s, 0, 0, 500);
	pb_stream_end_probe(&s, 400, 0, 3);
	pb_stream_end_probe(&s, 499, 0, 4);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 253), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 254), PB_STREAM_END);
	/* ... or at 520: read on */
	pb_stream_end_init(&s, 0, 0, 500);
	pb_stream_end_probe(&s, 520, 0, 3);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 1000), PB_STREAM_READING);
	main_range(&s, 500, 520, 1000);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 1100), PB_STREAM_END);
}
END_TEST

START_TEST(older_than_window)
{
	struct pb_stream_end s;

	pb_stream_end_init(&s, 0, 1000, -1);
	pb_stream_end_probe(&s, 7, 999, 3);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 252), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 253), PB_STREAM_OLD);
	/* the last chunk is in the window: the main consumer will get it */
	pb_stream_end_init(&s, 0, 1000, -1);
	pb_stream_end_probe(&s, 7, 1000, 3);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 5000), PB_STREAM_READING);
}
END_TEST

START_TEST(safety_net)
{
	struct pb_stream_end s;

	/* no probe message ever (it should not happen): only the net ends it */
	pb_stream_end_init(&s, 0, 0, -1);
	main_range(&s, 0, 99, 10);
	ck_assert_int_eq(pb_stream_end_deadline(&s, &lim), 30109);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 30108), PB_STREAM_READING);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 30109), PB_STREAM_IDLE);
	/* any delivery keeps it off */
	pb_stream_end_alive(&s, 30000);
	ck_assert_int_eq(pb_stream_end_check(&s, &lim, 30109), PB_STREAM_READING);
}
END_TEST

static Suite *streamend_suite(void)
{
	Suite *s = suite_create("streamend");
	TCase *tc = tcase_create("end");

	tcase_add_test(tc, pause_is_not_the_end);
	tcase_add_test(tc, burst_still_running);
	tcase_add_test(tc, busy_stream_next_is_exact);
	tcase_add_test(tc, late_probe_messages);
	tcase_add_test(tc, empty_stream);
	tcase_add_test(tc, read_already);
	tcase_add_test(tc, older_than_window);
	tcase_add_test(tc, safety_net);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(streamend_suite());
}
