/* control.c — the daemon's control socket and its client.
 *
 * See control.h for the protocol. The server keeps at most
 * PB_CONTROL_CLIENTS connections, each with a 2 s deadline, a 256-byte
 * request buffer and one pending answer; a connection beyond that waits in
 * the listen backlog until a slot frees.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pbtime.h"

#define PB_CONTROL_CLIENTS 16
#define PB_CONTROL_REQ_MAX 256
#define PB_CONTROL_DEADLINE_MS 2000
#define PB_CONTROL_ANSWER_MAX (1024 * 1024)	/* what the client accepts */

struct pb_control_client {
	int fd;			/* -1: free slot */
	int64_t since_ms;	/* accepted at */
	char req[PB_CONTROL_REQ_MAX + 1];
	size_t req_len;
	char *out;		/* the answer with its newline, while writing */
	size_t out_len, out_off;
};

struct pb_control {
	int fd;
	char *path;
	dev_t dev;		/* of the socket file we made, so close unlinks */
	ino_t ino;		/* only ours */
	pb_control_handler handler;
	void *ctx;
	struct pb_control_client clients[PB_CONTROL_CLIENTS];
};

static int fill_addr(struct sockaddr_un *sa, const char *path, struct pb_err *err)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (len == 0)
		return pb_err_set(err, EX_CONFIG, "control socket path is empty");
	if (len >= sizeof(sa->sun_path))
		return pb_err_set(err, EX_CONFIG,
				  "control socket path %s is too long (%zu bytes, at most %zu): "
				  "choose a shorter state_dir", path, len, sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* Is a daemon answering on path? 1 yes, 0 no (nothing there, or a stale
 * socket file), -1 error (a file that is not a socket, ...). */
static int socket_alive(const struct sockaddr_un *sa, const char *path, struct pb_err *err)
{
	struct stat st;
	int fd = -1, rc = -1;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT) {
			rc = 0;
			goto out;
		}
		pb_err_set(err, EX_CANTCREAT, "control socket %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		pb_err_set(err, EX_CANTCREAT,
			   "control socket %s exists and is not a socket: remove it", path);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		pb_err_set(err, EX_OSERR, "socket: %s", strerror(errno));
		goto out;
	}
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS) {
		rc = 1;		/* accepted, or a live listener with a full backlog */
	} else if (errno == ECONNREFUSED || errno == ENOENT) {
		rc = 0;
	} else {
		pb_err_set(err, EX_CANTCREAT, "control socket %s: %s", path, strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

struct pb_control *pb_control_listen(const char *path, pb_control_handler handler, void *ctx,
				     struct pb_err *err)
{
	struct pb_control *c = NULL;
	struct sockaddr_un sa;
	struct stat st;
	mode_t old_umask;
	int alive, rc;

	if (fill_addr(&sa, path, err) < 0)
		goto fail;
	alive = socket_alive(&sa, path, err);
	if (alive < 0)
		goto fail;
	if (alive) {
		pb_err_set(err, EX_TEMPFAIL, "another provbus-consumer is running on %s", path);
		goto fail;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		pb_err_set(err, EX_CANTCREAT, "stale control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto fail;
	}
	c->fd = -1;
	c->path = strdup(path);
	if (!c->path) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto fail;
	}
	c->handler = handler;
	c->ctx = ctx;
	for (int i = 0; i < PB_CONTROL_CLIENTS; i++)
		c->clients[i].fd = -1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		pb_err_set(err, EX_OSERR, "socket: %s", strerror(errno));
		goto fail;
	}
	/* the file is born 0600: no window where another user can connect */
	old_umask = umask(0177);
	rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (rc < 0) {
		pb_err_set(err, EX_CANTCREAT, "control socket %s: bind: %s%s", path,
			   strerror(errno), errno == ENOENT ? " (does state_dir exist?)" : "");
		goto fail;
	}
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
		pb_err_set(err, EX_CANTCREAT, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->fd, PB_CONTROL_CLIENTS) < 0) {
		pb_err_set(err, EX_OSERR, "control socket %s: listen: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	return c;
fail:
	if (c) {
		if (c->fd >= 0)
			close(c->fd);
		free(c->path);
		free(c);
	}
	return NULL;
}

static void drop(struct pb_control_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

void pb_control_close(struct pb_control *c)
{
	struct stat st;

	if (!c)
		return;
	for (int i = 0; i < PB_CONTROL_CLIENTS; i++)
		drop(&c->clients[i]);
	if (c->fd >= 0)
		close(c->fd);
	/* a newer daemon may have taken the path over: leave its socket be */
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	free(c);
}

int pb_control_pollfds(struct pb_control *c, struct pollfd *fds, int max)
{
	int n = 0, busy = 0;

	for (int i = 0; i < PB_CONTROL_CLIENTS && n < max; i++) {
		struct pb_control_client *cl = &c->clients[i];

		if (cl->fd < 0)
			continue;
		busy++;
		fds[n++] = (struct pollfd){ .fd = cl->fd, .events = cl->out ? POLLOUT : POLLIN };
	}
	/* when full, new connections wait in the backlog */
	if (busy < PB_CONTROL_CLIENTS && n < max)
		fds[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
	return n;
}

int pb_control_timeout_ms(const struct pb_control *c, int64_t now_ms)
{
	int64_t next = -1;

	for (int i = 0; i < PB_CONTROL_CLIENTS; i++) {
		const struct pb_control_client *cl = &c->clients[i];
		int64_t left;

		if (cl->fd < 0)
			continue;
		left = cl->since_ms + PB_CONTROL_DEADLINE_MS - now_ms;
		if (left < 0)
			left = 0;
		if (next < 0 || left < next)
			next = left;
	}
	return (int)next;
}

static void accept_clients(struct pb_control *c, int64_t now_ms)
{
	for (int i = 0; i < PB_CONTROL_CLIENTS; i++) {
		struct pb_control_client *cl = &c->clients[i];
		int fd;

		if (cl->fd >= 0)
			continue;
		do
			fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			return;	/* EAGAIN: nobody waiting; else (EMFILE...) try next time */
		cl->fd = fd;
		cl->since_ms = now_ms;
	}
}

/* Sets the answer for the request: the handler's text and a newline. */
static void answer(struct pb_control *c, struct pb_control_client *cl)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";
	char *text;
	size_t len;

	while (cl->req_len && (cl->req[cl->req_len - 1] == '\r' ||
			       cl->req[cl->req_len - 1] == ' ' || cl->req[cl->req_len - 1] == '\t'))
		cl->req_len--;
	cl->req[cl->req_len] = '\0';
	text = c->handler ? c->handler(cl->req, c->ctx) : NULL;
	len = text ? strlen(text) : sizeof(oom) - 1;
	cl->out = malloc(len + 1);
	if (!cl->out) {
		free(text);
		drop(cl);
		return;
	}
	memcpy(cl->out, text ? text : oom, len);
	cl->out[len] = '\n';
	cl->out_len = len + 1;
	cl->out_off = 0;
	free(text);
}

static void serve_read(struct pb_control *c, struct pb_control_client *cl)
{
	for (;;) {
		size_t room = PB_CONTROL_REQ_MAX - cl->req_len;
		ssize_t n;
		char *nl;

		if (room == 0) {
			/* no verb is this long */
			static const char too_long[] = "{\"error\":\"request too long\"}\n";

			cl->out = strdup(too_long);
			if (!cl->out) {
				drop(cl);
				return;
			}
			cl->out_len = sizeof(too_long) - 1;
			return;
		}
		n = read(cl->fd, cl->req + cl->req_len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				drop(cl);
			return;
		}
		if (n == 0) {
			/* the client said all it will: a verb without its newline
			 * still counts, nothing at all is a hang-up */
			if (cl->req_len)
				answer(c, cl);
			else
				drop(cl);
			return;
		}
		nl = memchr(cl->req + cl->req_len, '\n', (size_t)n);
		cl->req_len += (size_t)n;
		if (nl) {
			cl->req_len = (size_t)(nl - cl->req);
			answer(c, cl);
			return;
		}
	}
}

static void serve_write(struct pb_control_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				drop(cl);
			return;
		}
		cl->out_off += (size_t)n;
	}
	drop(cl);	/* all said: close */
}

void pb_control_handle(struct pb_control *c, int64_t now_ms)
{
	accept_clients(c, now_ms);
	for (int i = 0; i < PB_CONTROL_CLIENTS; i++) {
		struct pb_control_client *cl = &c->clients[i];

		if (cl->fd < 0)
			continue;
		if (now_ms - cl->since_ms >= PB_CONTROL_DEADLINE_MS) {
			drop(cl);
			continue;
		}
		if (!cl->out)
			serve_read(c, cl);
		if (cl->fd >= 0 && cl->out)
			serve_write(cl);
	}
	/* slots freed above: take who waits in the backlog now */
	accept_clients(c, now_ms);
}

/* ---- client ---- */

static int left_ms(int64_t deadline)
{
	int64_t left = deadline - pb_mono_ms();

	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Waits for events on fd until the deadline. 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, left_ms(deadline));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n;
		return 1;
	}
}

static int connect_until(int fd, const struct sockaddr_un *sa, const char *path,
			 int64_t deadline, struct pb_err *err)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* the backlog is full: a unix socket cannot be polled for
			 * this, so try again shortly */
			if (pb_mono_ms() >= deadline)
				return pb_err_set(err, EX_TEMPFAIL,
						  "the provbus-consumer on %s is busy: try again",
						  path);
			poll(NULL, 0, 10);
			continue;
		}
		if (errno == ENOENT || errno == ECONNREFUSED)
			return pb_err_set(err, EX_UNAVAILABLE,
					  "no provbus-consumer answers on %s (is it running?)", path);
		if (errno == EACCES || errno == EPERM)
			return pb_err_set(err, EX_NOPERM,
					  "control socket %s: %s (run as the daemon's user)", path,
					  strerror(errno));
		return pb_err_set(err, EX_UNAVAILABLE, "control socket %s: %s", path,
				  strerror(errno));
	}
}

static int send_all(int fd, const char *buf, size_t len, const char *path, int64_t deadline,
		    struct pb_err *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT, deadline);

			if (w > 0)
				continue;
			if (w == 0)
				return pb_err_set(err, EX_TEMPFAIL,
						  "control socket %s: no answer in time", path);
		}
		return pb_err_set(err, EX_UNAVAILABLE, "control socket %s: send: %s", path,
				  strerror(errno));
	}
	return 0;
}

char *pb_control_call(const char *path, const char *verb, int timeout_ms, struct pb_err *err)
{
	int64_t deadline = pb_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct sockaddr_un sa;
	char *req = NULL, *ans = NULL, *res = NULL;
	size_t len = 0, cap = 0;
	int fd = -1;

	if (fill_addr(&sa, path, err) < 0)
		goto out;
	if (strchr(verb, '\n')) {
		pb_err_set(err, EX_USAGE, "control verb must be one line");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		pb_err_set(err, EX_OSERR, "socket: %s", strerror(errno));
		goto out;
	}
	if (connect_until(fd, &sa, path, deadline, err) < 0)
		goto out;
	if (asprintf(&req, "%s\n", verb) < 0) {
		req = NULL;
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (send_all(fd, req, strlen(req), path, deadline, err) < 0)
		goto out;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *p;

			if (cap >= PB_CONTROL_ANSWER_MAX) {
				pb_err_set(err, EX_PROTOCOL, "control socket %s: answer too long",
					   path);
				goto out;
			}
			p = realloc(ans, cap ? cap * 2 : 8192);
			if (!p) {
				pb_err_set(err, EX_OSERR, "out of memory");
				goto out;
			}
			ans = p;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(fd, ans + len, cap - len - 1);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET && len)
			break;	/* the server closed with our extra bytes unread */
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(fd, POLLIN, deadline);

			if (w > 0)
				continue;
			if (w == 0) {
				pb_err_set(err, EX_TEMPFAIL,
					   "control socket %s: no answer within %d ms", path,
					   timeout_ms);
				goto out;
			}
		}
		pb_err_set(err, EX_UNAVAILABLE, "control socket %s: read: %s", path,
			   strerror(errno));
		goto out;
	}
	if (len == 0) {
		pb_err_set(err, EX_PROTOCOL,
			   "control socket %s: closed without an answer (daemon busy or stopping?)",
			   path);
		goto out;
	}
	while (len && (ans[len - 1] == '\n' || ans[len - 1] == '\r'))
		len--;
	ans[len] = '\0';
	res = ans;
	ans = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(ans);
	return res;
}
