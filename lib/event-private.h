/* event-private.h — for event.c's own tests only (tests/unit/test_event.c,
 * fuzz/fuzz_event.c); not part of the library's API. Programs call
 * pb_event_parse.
 *
 * pb_event_parse reads a body by one of two paths: a fast scanner for the
 * common flat ASCII event, and jansson for everything else (the scanner
 * declines whatever it does not know, and jansson then reads the body from
 * the start). Both paths feed the same validation, so they must give the
 * same result; this entry point lets a test force a path and compare. */
#ifndef PB_EVENT_PRIVATE_H
#define PB_EVENT_PRIVATE_H

#include <stddef.h>

#include "err.h"
#include "event.h"

enum pb_event_path {
	PB_EVENT_PATH_AUTO,	/* what pb_event_parse does: fast, else jansson */
	PB_EVENT_PATH_SLOW,	/* jansson only */
	PB_EVENT_PATH_FAST,	/* the fast scanner only: returns 1 if it declines */
};

/* pb_event_parse by the given path. Returns 0 or -1 + err as
 * pb_event_parse does; with PB_EVENT_PATH_FAST, 1 (ev zeroed, err not
 * touched) when the scanner declines the body. */
int pb_event_parse_path(const void *body, size_t len, struct pb_event *ev, struct pb_err *err,
			enum pb_event_path path);

#endif
