/* sdnotify.c — systemd's notify protocol: one datagram to $NOTIFY_SOCKET.
 *
 * A socket per call: notifications are rare (ready, a watchdog ping every
 * few seconds, a status change), and this way nothing is left open for a
 * child to inherit. */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int64_t watchdog_from_env(void);

/* After pb_sd_detach: what the environment said, kept here */
static int detached;
static char *kept_socket;
static int64_t kept_watchdog_ms;

static const char *notify_socket(void)
{
	return detached ? kept_socket : getenv("NOTIFY_SOCKET");
}

int pb_sd_notify(const char *state)
{
	const char *path = notify_socket();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, saved;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
		/* vsock:... and friends are not spoken here */
		errno = EAFNOSUPPORT;
		return -1;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace: no terminating NUL */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	do
		n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? -1 : 0;
}

int pb_sd_notifyf(const char *fmt, ...)
{
	char buf[1024], *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf)) {
		va_start(ap, fmt);
		n = vasprintf(&big, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
	}
	rc = pb_sd_notify(big ? big : buf);
	free(big);
	return rc;
}

/* Parses a whole decimal number > 0; 0 when s is not one. */
static unsigned long long parse_positive(const char *s)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return 0;
	return v;
}

int64_t pb_sd_watchdog_ms(void)
{
	if (detached)
		return kept_watchdog_ms;
	return watchdog_from_env();
}

void pb_sd_detach(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	if (detached)
		return;
	kept_watchdog_ms = watchdog_from_env();
	kept_socket = path && *path ? strdup(path) : NULL;
	detached = 1;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static int64_t watchdog_from_env(void)
{
	unsigned long long usec = parse_positive(getenv("WATCHDOG_USEC"));
	const char *pid = getenv("WATCHDOG_PID");

	if (usec == 0 || usec > (unsigned long long)INT64_MAX)
		return 0;
	/* the interval may be meant for another process (our parent's) */
	if (pid && *pid && parse_positive(pid) != (unsigned long long)getpid())
		return 0;
	return usec < 1000 ? 1 : (int64_t)(usec / 1000);
}
