/* jsondoc.c — the shared part of checking a JSON file: jansson parses,
 * jsonpos finds again where a member stands, so that every error, syntax
 * or meaning, reads "FILE:LINE:COLUMN: message". */
#include "jsondoc.h"

#include <stdio.h>

#include "jsonpos.h"
#include "textfile.h"

json_t *pb_jsondoc_parse(const struct pb_jsondoc *d)
{
	json_error_t jerr;
	json_t *root = json_loadb(d->text, d->len, JSON_REJECT_DUPLICATES, &jerr);

	if (!root)
		pb_err_set(d->err, d->code, "%s:%d:%d: %s", d->file, jerr.line > 0 ? jerr.line : 1,
			   jerr.column > 0 ? jerr.column : 1, jerr.text);
	return root;
}

json_t *pb_jsondoc_load(struct pb_jsondoc *d, size_t max_bytes, const char *what,
			const char *hint, const char *top, char **text)
{
	json_t *root = NULL;

	*text = NULL;
	if (pb_textfile_read(d->file, max_bytes, what, hint, d->code, text, &d->len, d->err) < 0)
		return NULL;
	d->text = *text;
	root = pb_jsondoc_parse(d);
	if (root && !json_is_object(root)) {
		pb_err_set(d->err, d->code, "%s:1:1: %s must be a JSON object", d->file, top);
		json_decref(root);
		root = NULL;
	}
	return root;
}

int pb_jsondoc_vfail(const struct pb_jsondoc *d, const char *const *path, size_t n, int at_value,
		     const char *fmt, va_list ap)
{
	char msg[PB_ERR_MAX];
	int line, col;

	if (at_value)
		pb_jsonpos_find_value(d->text, d->len, path, n, &line, &col);
	else
		pb_jsonpos_find(d->text, d->len, path, n, &line, &col);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return pb_err_set(d->err, d->code, "%s:%d:%d: %s", d->file, line, col, msg);
}

int pb_jsondoc_fail(const struct pb_jsondoc *d, const char *const *path, size_t n, int at_value,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pb_jsondoc_vfail(d, path, n, at_value, fmt, ap);
	va_end(ap);
	return -1;
}

const char *pb_jsondoc_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

json_t *pb_jsondoc_member(json_t *obj, const char *key)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;

	return v && !json_is_null(v) ? v : NULL;
}
