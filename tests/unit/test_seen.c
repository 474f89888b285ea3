/* test_seen.c — provbus-consumer's duplicate filter (consumer/seen.c)
 * against a model of its contract: a ring of `capacity` distinct ids,
 * the oldest evicted first, ids over 64 bytes never kept; and its seq
 * marks. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../consumer/consumer.h"
#include "suite_main.h"

/* the model: the last `cap` distinct ids added, in a ring */
struct model {
	char (*ids)[80];
	size_t cap, head;
};

static int model_has(const struct model *m, const char *id)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->ids[i][0] && !strcmp(m->ids[i], id))
			return 1;
	return 0;
}

static void model_add(struct model *m, const char *id)
{
	if (strlen(id) > 64 || model_has(m, id))
		return;
	strcpy(m->ids[m->head], id);
	m->head = (m->head + 1) % m->cap;
}

static void check_against_model(size_t cap, unsigned n_ids, unsigned steps, unsigned seed)
{
	struct cs_seen *s = cs_seen_new(cap);
	struct model m = { calloc(cap, sizeof(*m.ids)), cap, 0 };
	char id[80];

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(m.ids);
	srand(seed);
	for (unsigned i = 0; i < steps; i++) {
		/* mostly ids from a set a few times the capacity (so evicted
		 * ones come back), some of 64 and 65 bytes */
		unsigned k = (unsigned)rand() % n_ids;

		if (k % 97 == 3)
			snprintf(id, sizeof(id), "%0*u", 64 + (int)(k & 1), k);
		else
			snprintf(id, sizeof(id), "ev-%u", k);
		ck_assert_int_eq(cs_seen_has(s, id), model_has(&m, id));
		if (rand() % 4)
			cs_seen_add(s, id), model_add(&m, id);
	}
	for (unsigned k = 0; k < n_ids; k++) {
		snprintf(id, sizeof(id), "ev-%u", k);
		ck_assert_int_eq(cs_seen_has(s, id), model_has(&m, id));
	}
	cs_seen_free(s);
	free(m.ids);
}

START_TEST(test_basic)
{
	struct cs_seen *s = cs_seen_new(3);
	char long_id[80];

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(cs_seen_has(s, "a"), 0);
	ck_assert_int_eq(cs_seen_has(s, ""), 0);
	cs_seen_add(s, "a");
	cs_seen_add(s, "b");
	cs_seen_add(s, "a");	/* already there: takes no slot */
	cs_seen_add(s, "c");
	ck_assert(cs_seen_has(s, "a") && cs_seen_has(s, "b") && cs_seen_has(s, "c"));
	cs_seen_add(s, "d");	/* evicts a, the oldest */
	ck_assert_int_eq(cs_seen_has(s, "a"), 0);
	ck_assert(cs_seen_has(s, "b") && cs_seen_has(s, "c") && cs_seen_has(s, "d"));
	memset(long_id, 'x', 65);
	long_id[65] = '\0';
	cs_seen_add(s, long_id);	/* over 64 bytes: not kept, evicts nothing */
	ck_assert_int_eq(cs_seen_has(s, long_id), 0);
	ck_assert(cs_seen_has(s, "b"));
	long_id[64] = '\0';
	cs_seen_add(s, long_id);	/* 64: kept, evicts b */
	ck_assert(cs_seen_has(s, long_id));
	ck_assert_int_eq(cs_seen_has(s, "b"), 0);
	cs_seen_free(s);
	cs_seen_free(NULL);
}
END_TEST

START_TEST(test_model_small)
{
	check_against_model(1, 4, 2000, 1);
	check_against_model(2, 8, 5000, 2);
	check_against_model(7, 30, 20000, 3);
}
END_TEST

START_TEST(test_model_daemon_size)
{
	/* the daemon's capacity (4 * CS_BATCH_MAX) */
	check_against_model(4 * CS_BATCH_MAX, 6000, 60000, 4);
}
END_TEST

START_TEST(test_marks)
{
	struct cs_marks *m = cs_marks_new();
	int64_t v = 0;
	char node[32];

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(cs_marks_get(m, "n1", "s", &v), 0);
	cs_marks_raise(m, "n1", "s", 5);	/* no mark: raise creates none */
	ck_assert_int_eq(cs_marks_get(m, "n1", "s", &v), 0);
	cs_marks_set(m, "n1", "s", 3);
	ck_assert(cs_marks_get(m, "n1", "s", &v) && v == 3);
	cs_marks_raise(m, "n1", "s", 2);
	ck_assert(cs_marks_get(m, "n1", "s", &v) && v == 3);
	cs_marks_raise(m, "n1", "s", 9);
	ck_assert(cs_marks_get(m, "n1", "s", &v) && v == 9);
	ck_assert_int_eq(cs_marks_get(m, "n1", "t", &v), 0);
	/* past 3/4 of the table, all are dropped and the new one kept */
	for (int i = 0; i < 1024; i++) {
		snprintf(node, sizeof(node), "node-%d", i);
		cs_marks_set(m, node, "s", i);
		ck_assert(cs_marks_get(m, node, "s", &v) && v == i);
	}
	cs_marks_free(m);
	cs_marks_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("seen");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_model_small);
	tcase_add_test(tc, test_model_daemon_size);
	tcase_add_test(tc, test_marks);
	suite_add_tcase(s, tc);
	return pb_suite_run(s);
}
