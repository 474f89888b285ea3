/* err.h — the caller-provided error of every provbus function.
 *
 * A function that can fail returns -1 (or NULL) and fills a struct pb_err
 * the caller owns; only main() decides to exit, with err->code, a
 * <sysexits.h> value. Messages are lowercase, no final period, and name
 * the file, field, exchange or routing key at fault first. */
#ifndef PB_ERR_H
#define PB_ERR_H

#include <sysexits.h>

#define PB_ERR_MAX 1024

struct pb_err {
	int code;		/* EX_* from <sysexits.h>; 0 = no error */
	char msg[PB_ERR_MAX];
};

#define PB_ERR_INIT { 0, "" }

/* Sets code and message (printf format); returns -1 so callers can write
 * `return pb_err_set(err, EX_DATAERR, "...")`. err may be NULL. */
int pb_err_set(struct pb_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the message with "PREFIX: " (printf format), keeping the code. */
void pb_err_prefix(struct pb_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void pb_err_clear(struct pb_err *err);

#endif
