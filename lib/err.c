#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pb_err_set(struct pb_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void pb_err_prefix(struct pb_err *err, const char *fmt, ...)
{
	char buf[PB_ERR_MAX];
	va_list ap;
	int n;

	if (!err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	memcpy(buf + n, ": ", 3);
	n += 2;
	/* the old message follows, cut to what fits */
	size_t room = sizeof(buf) - (size_t)n - 1, len = strnlen(err->msg, room);
	memcpy(buf + n, err->msg, len);
	buf[n + len] = '\0';
	memcpy(err->msg, buf, sizeof(buf));
}

void pb_err_clear(struct pb_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
