/* libFuzzer target: the env-file quoter. The quoted form must be one
 * single-quoted shell word that decodes back to the input: check it by
 * decoding it the way sh does ('...' literal, '\'' a quote). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *sh_unquote(const char *q, size_t *len)
{
	size_t n = strlen(q), o = 0;
	char *out = malloc(n + 1);
	int inq = 0;

	for (size_t i = 0; i < n; i++) {
		if (inq) {
			if (q[i] == '\'')
				inq = 0;
			else
				out[o++] = q[i];
		} else if (q[i] == '\'') {
			inq = 1;
		} else if (q[i] == '\\' && i + 1 < n) {
			out[o++] = q[++i];
		} else {
			abort();	/* an unquoted character: the shell would read it */
		}
	}
	if (inq)
		abort();
	*len = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q, *back;
	size_t len;

	if (memchr(data, '\0', size))
		return 0;	/* values never hold NUL (docs/protocol.md §4) */
	q = pb_shell_quote((const char *)data, size);
	if (!q)
		return 0;
	back = sh_unquote(q, &len);
	if (len != size || memcmp(back, data, size))
		abort();
	free(back);
	free(q);
	return 0;
}
