/* envfile.h — the env file of provbus-consumer(1).
 *
 * Sorted lines "export NAME='value'" with shell-safe quoting: a value is
 * wrapped in single quotes and every ' inside becomes '\'' — nothing in it
 * is ever interpreted by a shell. Or, in the systemd format, NAME="value"
 * lines by systemd.exec(5)'s EnvironmentFile= rules (envfile.c). */
#ifndef PB_ENVFILE_H
#define PB_ENVFILE_H

#include <stddef.h>

#include "err.h"
#include "manifest.h"

/* Appends the single-quoted form of s (len bytes) to a malloc'd string.
 * Returns a new string (free()) or NULL on allocation failure. */
char *pb_shell_quote(const char *s, size_t len);

/* The env file's two formats (consumer.env_format). */
enum pb_env_format {
	PB_ENV_SHELL = 0,	/* export NAME='value' (for . / source) */
	PB_ENV_SYSTEMD,		/* NAME="value", systemd.exec(5) EnvironmentFile= quoting */
};

/* The double-quoted form of s for systemd's EnvironmentFile= (and a POSIX
 * shell): " \ ` $ get a backslash, every other byte (newline included)
 * stays. Returns a new string or NULL on allocation failure. */
char *pb_systemd_quote(const char *s, size_t len);

/* pb_envfile_render / pb_envfile_write in the format fmt. */
char *pb_envfile_render_as(const struct pb_kv *vars, size_t n, enum pb_env_format fmt);
int pb_envfile_write_as(const char *path, const struct pb_kv *vars, size_t n,
			enum pb_env_format fmt, struct pb_err *err);

/* Renders vars (sorted by name by this function; names must pass
 * pb_name_key_ok) as the env file text. Returns a malloc'd string. */
char *pb_envfile_render(const struct pb_kv *vars, size_t n);

/* Writes path atomically: a temp file in the same directory, write,
 * fsync, chmod mode, rename, fsync of the directory. A reader sees the old
 * file or the new one, never a part. Returns 0 or -1 + err naming the
 * path and errno text (EX_CANTCREAT or EX_IOERR as pb_file_out_commit). */
int pb_file_write_atomic(const char *path, const void *data, size_t len, int mode,
			 struct pb_err *err);

/* The same without the two fsyncs: atomic for readers (rename), not
 * durable across a power loss. For files rewritten before every use that
 * nothing reads after a reboot before the next rewrite (state.json: each
 * fsync is 1-5 ms on the path from a change to the provision run). */
int pb_file_replace(const char *path, const void *data, size_t len, int mode,
		    struct pb_err *err);

/* The same written in pieces, for text too large to build in memory
 * first (state.json: 9.5 MB at 40,000 providers): open makes the
 * temporary file beside path; write appends (a failure is kept and
 * reported by the commit); commit closes it and renames it over path as
 * pb_file_write_atomic (durable) or pb_file_replace (not) does, or
 * removes it and fails, naming path, the step and errno: EX_CANTCREAT
 * when the file cannot be made (open, mode, rename), EX_IOERR when it
 * cannot be written (a write, a sync, the close: a full disk); abort
 * removes it. Commit and abort release o. */
struct pb_file_out {
	char *path, *tmp;
	int fd;
	int errnum;		/* the first failed write's errno, 0: none */
	const char *step;
};
int pb_file_out_open(struct pb_file_out *o, const char *path, struct pb_err *err);
int pb_file_out_write(struct pb_file_out *o, const void *data, size_t len);
int pb_file_out_commit(struct pb_file_out *o, int mode, int durable, struct pb_err *err);
void pb_file_out_abort(struct pb_file_out *o);

/* pb_envfile_render + pb_file_write_atomic with mode 0640. */
int pb_envfile_write(const char *path, const struct pb_kv *vars, size_t n, struct pb_err *err);

#endif
