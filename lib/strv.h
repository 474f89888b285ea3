/* strv.h — vectors of strings (char **v with a count n): the comparator
 * qsort and bsearch take, and the free. */
#ifndef PB_STRV_H
#define PB_STRV_H

#include <stddef.h>

/* strcmp of two elements of a vector of strings (char * or const char *),
 * for qsort(v, n, sizeof(*v), pb_strv_cmp) and bsearch(&s, v, ...). */
int pb_strv_cmp(const void *a, const void *b);

/* Frees v[0] .. v[n - 1] (NULL elements allowed) and v; v may be NULL. */
void pb_strv_free(char **v, size_t n);

#endif
