/* textfile.h — reading a whole small text file (a configuration, a
 * manifest, a topology) with errors that name it. */
#ifndef PB_TEXTFILE_H
#define PB_TEXTFILE_H

#include <stddef.h>

#include "err.h"

/* Reads path into a malloc'd NUL-terminated buffer (*text, free()) of
 * *len bytes. what names the file's role in messages ("configuration",
 * "manifest"); hint (may be NULL) is appended to the missing-file message
 * in parentheses. Errors: a missing or unreadable file or one that is not
 * a regular file, EX_NOINPUT; over max_bytes, too_big_code ("PATH: over N
 * bytes: not a WHAT file"). Returns 0 or -1 with err. */
int pb_textfile_read(const char *path, size_t max_bytes, const char *what, const char *hint,
		     int too_big_code, char **text, size_t *len, struct pb_err *err);

#endif
