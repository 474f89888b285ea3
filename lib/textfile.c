#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pb_textfile_read(const char *path, size_t max_bytes, const char *what, const char *hint,
		     int too_big_code, char **text, size_t *len, struct pb_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pb_err_set(err, EX_NOINPUT, "%s: cannot read the %s: %s%s%s%s", path, what,
				  strerror(errno), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		pb_err_set(err, EX_NOINPUT, "%s: not a regular file", path);
		goto out;
	}
	if ((size_t)st.st_size > max_bytes) {
		pb_err_set(err, too_big_code, "%s: over %zu bytes: not a %s file", path, max_bytes,
			   what);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		pb_err_set(err, EX_OSERR, "%s: out of memory", path);
		goto out;
	}
	while (n < (size_t)st.st_size) {
		r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			pb_err_set(err, EX_NOINPUT, "%s: cannot read the %s: %s", path, what,
				   strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}
