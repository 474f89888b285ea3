/* suite_main.h — the end of every Check suite's main: run it, print the
 * results, exit 1 when a test failed. */
#ifndef PB_SUITE_MAIN_H
#define PB_SUITE_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int pb_suite_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
