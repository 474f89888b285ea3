/* envfile.h — the env file of provbus-consumer(1).
 *
 * Sorted lines "export NAME='value'" with shell-safe quoting: a value is
 * wrapped in single quotes and every ' inside becomes '\'' — nothing in it
 * is ever interpreted by a shell. */
#ifndef PB_ENVFILE_H
#define PB_ENVFILE_H

#include <stddef.h>

#include "err.h"
#include "manifest.h"

/* Appends the single-quoted form of s (len bytes) to a malloc'd string.
 * Returns a new string (free()) or NULL on allocation failure. */
char *pb_shell_quote(const char *s, size_t len);

/* Renders vars (sorted by name by this function; names must pass
 * pb_name_key_ok) as the env file text. Returns a malloc'd string. */
char *pb_envfile_render(const struct pb_kv *vars, size_t n);

/* Writes path atomically: a temp file in the same directory, write,
 * fsync, chmod mode, rename, fsync of the directory. A reader sees the old
 * file or the new one, never a part. Returns 0 or -1 + err (EX_CANTCREAT
 * naming the path and errno text). */
int pb_file_write_atomic(const char *path, const void *data, size_t len, int mode,
			 struct pb_err *err);

/* The same without the two fsyncs: atomic for readers (rename), not
 * durable across a power loss. For files rewritten before every use that
 * nothing reads after a reboot before the next rewrite (state.json: each
 * fsync is 1-5 ms on the path from a change to the provision run). */
int pb_file_replace(const char *path, const void *data, size_t len, int mode,
		    struct pb_err *err);

/* pb_envfile_render + pb_file_write_atomic with mode 0640. */
int pb_envfile_write(const char *path, const struct pb_kv *vars, size_t n, struct pb_err *err);

#endif
