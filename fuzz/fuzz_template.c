/* libFuzzer target: the template expander on its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(const char *name, void *ctx)
{
	(void)ctx;
	if (!strcmp(name, "HOST"))
		return "10.0.3.7";
	if (!strcmp(name, "PORT"))
		return "1100";
	if (!strcmp(name, "EMPTY"))
		return "";
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_err err = PB_ERR_INIT;
	char *tmpl = malloc(size + 1), *out;

	if (!tmpl)
		return 0;
	memcpy(tmpl, data, size);
	tmpl[size] = '\0';
	out = pb_template_expand(tmpl, lookup, NULL, &err);
	if (!out && err.msg[0] == '\0')
		abort();
	/* expansion never grows a text without placeholders */
	if (out && !strchr(tmpl, '{') && strcmp(out, tmpl))
		abort();
	free(out);
	free(tmpl);
	return 0;
}
