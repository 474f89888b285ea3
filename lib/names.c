#include "names.h"

#include <stdio.h>
#include <string.h>

#include "textesc.h"

static int lower_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int pb_name_ident_ok(const char *s)
{
	size_t i;

	if (!s || !lower_digit(s[0]))
		return 0;
	for (i = 1; s[i]; i++)
		if (!lower_digit(s[i]) && s[i] != '-')
			return 0;
	return i <= PB_IDENT_MAX;
}

int pb_name_key_ok(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return 0;
	for (i = 1; s[i]; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return i <= PB_KEY_MAX;
}

int pb_name_service_ok(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
		    (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; s[i]; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return i <= PB_SERVICE_MAX;
}

int pb_value_check(const char *s, size_t len, char *why, size_t size)
{
	if (len > PB_VALUE_MAX) {
		if (why && size)
			snprintf(why, size, "%zu bytes, more than %d", len, PB_VALUE_MAX);
		return -1;
	}
	return pb_textesc_check(s, len, why, size, NULL);
}

int pb_value_ok(const char *s, size_t len)
{
	return pb_value_check(s, len, NULL, 0) == 0;
}
