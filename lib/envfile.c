/* envfile.c — the env file of provbus-consumer(1) and the atomic file write under it.
 *
 * Values come from events, that is from other nodes: the file must be
 * sourced by a shell without anything in a value being interpreted. Inside
 * single quotes a POSIX shell takes every byte literally except the closing
 * quote, so each ' becomes '\'' (close, an escaped quote, reopen) and
 * nothing else needs care. Names are not quoted, so they must pass the key
 * rule: render refuses a bad one rather than write it.
 *
 * The systemd format (EnvironmentFile=, systemd.exec(5)) is NAME="value":
 * inside double quotes systemd's parser takes every byte literally
 * (newlines included) except \ and ", and a backslash before one of
 * " \ ` $ stands for that character (before anything else it stays). So
 * those four are escaped and nothing else: the same text read by a POSIX
 * shell inside double quotes gives the same bytes. */
#include "envfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"

char *pb_shell_quote(const char *s, size_t len)
{
	size_t i, quotes = 0, n = 0;
	char *out;

	for (i = 0; i < len; i++)
		quotes += s[i] == '\'';
	out = malloc(len + 3 * quotes + 3);
	if (!out)
		return NULL;
	out[n++] = '\'';
	for (i = 0; i < len; i++) {
		if (s[i] == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = s[i];
		}
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

char *pb_systemd_quote(const char *s, size_t len)
{
	size_t i, esc = 0, n = 0;
	char *out;

	for (i = 0; i < len; i++)
		esc += strchr("\"\\`$", s[i]) != NULL && s[i];
	out = malloc(len + esc + 3);
	if (!out)
		return NULL;
	out[n++] = '"';
	for (i = 0; i < len; i++) {
		if (s[i] && strchr("\"\\`$", s[i]))
			out[n++] = '\\';
		out[n++] = s[i];
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

static int kv_by_name(const void *a, const void *b)
{
	const struct pb_kv *x = *(const struct pb_kv *const *)a, *y = *(const struct pb_kv *const *)b;
	int c = strcmp(x->name, y->name);

	/* equal names keep their order, so a later one still wins in the shell */
	return c ? c : (x < y ? -1 : x > y);
}

/* Returns NULL on allocation failure or when a name breaks the key rule
 * (an unquoted name must not be able to carry shell syntax). */
char *pb_envfile_render(const struct pb_kv *vars, size_t n)
{
	return pb_envfile_render_as(vars, n, PB_ENV_SHELL);
}

char *pb_envfile_render_as(const struct pb_kv *vars, size_t n, enum pb_env_format fmt)
{
	const struct pb_kv **sorted = NULL;
	char *text = NULL, *quoted;
	size_t i, size, used;

	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!sorted)
		goto out;
	/* the sorted lines only, no comment: what the file holds is exactly
	 * the values (provbus.json(5)), and an empty set an empty file */
	size = 1;
	for (i = 0; i < n; i++) {
		if (!pb_name_key_ok(vars[i].name) || !vars[i].value)
			goto out;
		sorted[i] = &vars[i];
		/* "export NAME=" + worst case quoting + "\n" */
		size += 8 + strlen(vars[i].name) + 4 * strlen(vars[i].value) + 3;
	}
	qsort(sorted, n, sizeof(*sorted), kv_by_name);
	text = malloc(size);
	if (!text)
		goto out;
	text[0] = '\0';
	used = 0;
	for (i = 0; i < n; i++) {
		quoted = fmt == PB_ENV_SYSTEMD
				 ? pb_systemd_quote(sorted[i]->value, strlen(sorted[i]->value))
				 : pb_shell_quote(sorted[i]->value, strlen(sorted[i]->value));
		if (!quoted) {
			free(text);
			text = NULL;
			goto out;
		}
		used += (size_t)snprintf(text + used, size - used, "%s%s=%s\n",
					 fmt == PB_ENV_SYSTEMD ? "" : "export ", sorted[i]->name, quoted);
		free(quoted);
	}
out:
	free(sorted);
	return text;
}

/* "DIR/.BASE.XXXXXX" next to path, so rename() stays in one file system. */
static char *temp_template(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = path + dirlen;
	char *t = malloc(strlen(path) + 10);

	if (t)
		sprintf(t, "%.*s.%s.XXXXXX", (int)dirlen, path, base);
	return t;
}

/* The directory of path, for its fsync: "." when path has no slash. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The file being written: the temporary file beside path (o->tmp,
 * open as o->fd) until pb_file_out_commit renames it over path. A
 * failed write is kept (o->step, o->errnum) and reported by the commit,
 * so a caller writing in pieces checks once. */
int pb_file_out_open(struct pb_file_out *o, const char *path, struct pb_err *err)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (!path || !*path || path[strlen(path) - 1] == '/')
		return pb_err_set(err, EX_CANTCREAT, "%s: cannot write: not a file path",
				  path ? path : "(null)");
	o->path = strdup(path);
	o->tmp = temp_template(path);
	if (!o->path || !o->tmp) {
		pb_file_out_abort(o);
		return pb_err_set(err, EX_OSERR, "%s: cannot write: out of memory", path);
	}
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int errnum = errno;

		free(o->tmp);	/* nothing was made */
		o->tmp = NULL;
		pb_err_set(err, EX_CANTCREAT, "%s: cannot create a temporary file beside it: %s",
			   path, strerror(errnum));
		pb_file_out_abort(o);
		return -1;
	}
	return 0;
}

int pb_file_out_write(struct pb_file_out *o, const void *data, size_t len)
{
	if (o->errnum)
		return -1;
	if (write_all(o->fd, data, len)) {
		o->errnum = errno ? errno : EIO;
		o->step = "cannot write the temporary file";
		return -1;
	}
	return 0;
}

void pb_file_out_abort(struct pb_file_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

int pb_file_out_commit(struct pb_file_out *o, int mode, int durable, struct pb_err *err)
{
	char *dir = NULL;
	int dfd = -1, rc = -1, code = EX_IOERR;	/* the file is made: it is its writing */
	const char *step = o->step;

	errno = o->errnum;
	if (o->errnum)
		goto fail;
	step = "cannot sync the temporary file";
	if (durable && fsync(o->fd))
		goto fail;
	step = "cannot set the mode of the temporary file";
	if (fchmod(o->fd, (mode_t)mode)) {
		code = EX_CANTCREAT;
		goto fail;
	}
	step = "cannot close the temporary file";
	if (close(o->fd)) {
		o->fd = -1;
		goto fail;
	}
	o->fd = -1;
	step = "cannot rename the temporary file over it";
	if (rename(o->tmp, o->path)) {
		code = EX_CANTCREAT;
		goto fail;
	}
	free(o->tmp);	/* the temporary file is path now */
	o->tmp = NULL;
	/* the rename is durable only once the directory is synced; some file
	 * systems cannot sync a directory (EINVAL), which is not our failure */
	step = "cannot sync its directory";
	if (durable) {
		if (!(dir = dir_of(o->path))) {
			errno = ENOMEM;
			goto fail;
		}
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || (fsync(dfd) && errno != EINVAL))
			goto fail;
	}
	rc = 0;
	goto out;
fail:
	pb_err_set(err, code, "%s: %s: %s", o->path, step, strerror(errno));
out:
	if (dfd >= 0)
		close(dfd);
	free(dir);
	pb_file_out_abort(o);
	return rc;
}

static int file_write(const char *path, const void *data, size_t len, int mode, int durable,
		      struct pb_err *err)
{
	struct pb_file_out o;

	if (pb_file_out_open(&o, path, err) < 0)
		return -1;
	pb_file_out_write(&o, data, len);
	return pb_file_out_commit(&o, mode, durable, err);
}

int pb_file_write_atomic(const char *path, const void *data, size_t len, int mode,
			 struct pb_err *err)
{
	return file_write(path, data, len, mode, 1, err);
}

int pb_file_replace(const char *path, const void *data, size_t len, int mode,
		    struct pb_err *err)
{
	return file_write(path, data, len, mode, 0, err);
}

int pb_envfile_write(const char *path, const struct pb_kv *vars, size_t n, struct pb_err *err)
{
	return pb_envfile_write_as(path, vars, n, PB_ENV_SHELL, err);
}

int pb_envfile_write_as(const char *path, const struct pb_kv *vars, size_t n,
			enum pb_env_format fmt, struct pb_err *err)
{
	char *text = NULL;
	size_t i;
	int rc = -1;

	for (i = 0; i < n; i++) {
		if (!pb_name_key_ok(vars[i].name)) {
			pb_err_set(err, EX_DATAERR, "%s: env var name '%s' breaks the rule [A-Z_][A-Z0-9_]{0,127}",
				   path, vars[i].name ? vars[i].name : "(null)");
			goto out;
		}
		if (!vars[i].value) {
			pb_err_set(err, EX_SOFTWARE, "%s: env var %s has no value", path,
				   vars[i].name);
			goto out;
		}
	}
	text = pb_envfile_render_as(vars, n, fmt);
	if (!text) {
		pb_err_set(err, EX_OSERR, "%s: cannot render the env file: out of memory", path);
		goto out;
	}
	rc = pb_file_write_atomic(path, text, strlen(text), 0640, err);
out:
	free(text);
	return rc;
}
