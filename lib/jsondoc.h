/* jsondoc.h — what the checkers of provbus's JSON files (the node
 * configuration, service manifests, the topology) share: parsing the
 * text, failing with "FILE:LINE:COLUMN: message" at a member found by its
 * path (jsonpos), naming the kind of a value, and reading a member that
 * is set. */
#ifndef PB_JSONDOC_H
#define PB_JSONDOC_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

#include "err.h"

/* A JSON file being checked. The caller owns every pointer, and text
 * stays valid while errors are reported from it. */
struct pb_jsondoc {
	const char *file;	/* its path, first in every message */
	const char *text;	/* its text, len bytes: where positions are found */
	size_t len;
	int code;		/* the EX_* of an error in it: EX_CONFIG, EX_DATAERR */
	struct pb_err *err;	/* where errors go */
};

/* Reads d->file (as pb_textfile_read does: at most max_bytes, what and
 * hint name it in messages, too big is d->code) and parses it. Returns its
 * top object, d->text and d->len then its text, which the caller free()s
 * through *text, also when NULL is returned. NULL with d->err: a syntax
 * error as pb_jsondoc_parse says it; a top value that is not an object,
 * "FILE:1:1: TOP must be a JSON object" (top: "the configuration"). */
json_t *pb_jsondoc_load(struct pb_jsondoc *d, size_t max_bytes, const char *what,
			const char *hint, const char *top, char **text);

/* Parses d->text as one JSON value, duplicate keys rejected. Returns the
 * value (the caller json_decref()s it), or NULL with d->err set to
 * d->code and "FILE:LINE:COL: jansson's message". */
json_t *pb_jsondoc_parse(const struct pb_jsondoc *d);

/* Sets d->err to d->code and "FILE:LINE:COL: message" (printf format) and
 * returns -1. The position is that of the member at path (n components,
 * as for pb_jsonpos_find): its key, or its value when at_value; with
 * n == 0, the top value; 1:1 when it is not found. */
int pb_jsondoc_fail(const struct pb_jsondoc *d, const char *const *path, size_t n, int at_value,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int pb_jsondoc_vfail(const struct pb_jsondoc *d, const char *const *path, size_t n, int at_value,
		     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* The kind of v for "want X, got Y" messages: "an object", "an array",
 * "a string", "an integer", "a real number", "a boolean" or "null". */
const char *pb_jsondoc_kind(const json_t *v);

/* obj's member key, or NULL when obj is NULL or the member is absent or
 * null (null means "not set"). Borrowed from obj. */
json_t *pb_jsondoc_member(json_t *obj, const char *key);

#endif
