/* strv.c — vectors of strings; see strv.h. */
#include "strv.h"

#include <stdlib.h>
#include <string.h>

int pb_strv_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void pb_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
