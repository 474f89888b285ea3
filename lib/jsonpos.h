/* jsonpos.h — where in a JSON text a value stands.
 *
 * jansson reports line and column only for syntax errors; a semantic error
 * (unknown field, wrong type) still deserves "FILE:LINE:COLUMN". These
 * functions re-scan the text to find the position of a member by its path
 * of object keys (array elements by index). */
#ifndef PB_JSONPOS_H
#define PB_JSONPOS_H

#include <stddef.h>

/* Path components: object keys as strings; an array index as a string
 * of the form "[N]". path has n components.
 * On success returns 0 and sets *line and *col (1-based) to the position
 * of the last component's key (for an object member) or of the element
 * (for an array index). Returns -1 if not found or the text is not valid
 * JSON; then *line and *col are 1 and 1. */
int pb_jsonpos_find(const char *text, size_t len, const char *const *path, size_t n,
		    int *line, int *col);

/* The position of the value of the member at path (after the colon). */
int pb_jsonpos_find_value(const char *text, size_t len, const char *const *path, size_t n,
			  int *line, int *col);

#endif
