/* test_vocab.c — the tables of vocab.h: every word names its value and
 * back, the words of a list are distinct, anything else is refused, and
 * what is derived from a table (the verdict list of messages, which
 * statuses are finished) agrees with it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"
#include "suite_main.h"

/* One list seen through its functions, so one test covers them all. */
struct list {
	const char *what;
	int count;
	const char *(*name)(int);
	int (*parse)(const char *, int *);
	const char *first, *last;	/* a spot check of the order */
};

#define ADAPT_(n, type) \
	static const char *n##_name_i(int i) { return pb_##n##_name((enum type)i); } \
	static int n##_parse_i(const char *s, int *out) \
	{ \
		enum type v; \
		int rc = pb_##n##_parse(s, &v); \
		if (rc == 0) \
			*out = (int)v; \
		return rc; \
	}
ADAPT_(kind, pb_kind)
ADAPT_(verdict, pb_verdict)
ADAPT_(run_status, pb_run_status)
ADAPT_(reason, pb_reason)
ADAPT_(source, pb_source)

static const struct list lists[] = {
	{ "kinds", PB_KIND__COUNT, kind_name_i, kind_parse_i, "provides", "retire" },
	{ "verdicts", PB_VERDICT__COUNT, verdict_name_i, verdict_parse_i, "applied", "invalid" },
	{ "run statuses", PB_RUN__COUNT, run_status_name_i, run_status_parse_i, "ok", "running" },
	{ "reasons", PB_REASON__COUNT, reason_name_i, reason_parse_i, "startup", "expiry" },
	{ "sources", PB_SOURCE__COUNT, source_name_i, source_parse_i, "live", "daemon" },
};

START_TEST(test_round_trip)
{
	const struct list *l = &lists[_i];
	int v;

	ck_assert_msg(l->count >= 2, "%s: %d words", l->what, l->count);
	ck_assert_str_eq(l->name(0), l->first);
	ck_assert_str_eq(l->name(l->count - 1), l->last);
	for (int i = 0; i < l->count; i++) {
		const char *w = l->name(i);

		ck_assert_msg(w && *w && strcmp(w, "unknown"), "%s: word %d", l->what, i);
		ck_assert_int_eq(l->parse(w, &v), 0);
		ck_assert_int_eq(v, i);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(w, l->name(j)), "%s: %s twice", l->what, w);
	}
	ck_assert_str_eq(l->name(l->count), "unknown");
	ck_assert_str_eq(l->name(-1), "unknown");
	v = 42;
	ck_assert_int_eq(l->parse(NULL, &v), -1);
	ck_assert_int_eq(l->parse("", &v), -1);
	ck_assert_int_eq(l->parse("unknown", &v), -1);
	ck_assert_int_eq(v, 42);	/* untouched on error */
}
END_TEST

/* Case matters: the audit log stores the words as they are. */
START_TEST(test_case_matters)
{
	enum pb_verdict v;
	enum pb_reason r;

	ck_assert_int_eq(pb_verdict_parse("Applied", &v), -1);
	ck_assert_int_eq(pb_verdict_parse("applied ", &v), -1);
	ck_assert_int_eq(pb_reason_parse("Change", &r), -1);
}
END_TEST

/* The words of a list joined with sep, into out (256 bytes). */
static const char *joined(char *out, int count, const char *(*name)(int), const char *sep)
{
	out[0] = '\0';
	for (int i = 0; i < count; i++) {
		if (i)
			strcat(out, sep);
		strcat(out, name(i));
	}
	return out;
}

/* The lists the preprocessor builds: PB_VERDICT_LIST for messages,
 * PB_KIND_ALTERNATION for the topic permissions' regular expression. */
START_TEST(test_built_lists)
{
	char want[256];

	ck_assert_str_eq(PB_VERDICT_LIST, joined(want, PB_VERDICT__COUNT, verdict_name_i, ", "));
	ck_assert_str_eq(PB_VERDICT_LIST, "applied, duplicate, stale, foreign, expired, invalid");
	ck_assert_str_eq(PB_KIND_ALTERNATION, joined(want, PB_KIND__COUNT, kind_name_i, "|"));
	ck_assert_str_eq(PB_KIND_ALTERNATION, "provides|retire");
}
END_TEST

START_TEST(test_run_status_finished)
{
	ck_assert_int_eq(pb_run_status_finished(PB_RUN_RUNNING), 0);
	ck_assert_int_eq(pb_run_status_finished(PB_RUN_OK), 1);
	ck_assert_int_eq(pb_run_status_finished(PB_RUN_FAILED), 1);
	ck_assert_int_eq(pb_run_status_finished(PB_RUN_INTERRUPTED), 1);
}
END_TEST

static Suite *vocab_suite(void)
{
	Suite *s = suite_create("vocab");
	TCase *tc = tcase_create("tables");

	tcase_add_loop_test(tc, test_round_trip, 0, sizeof(lists) / sizeof(lists[0]));
	tcase_add_test(tc, test_case_matters);
	tcase_add_test(tc, test_built_lists);
	tcase_add_test(tc, test_run_status_finished);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(vocab_suite());
}
