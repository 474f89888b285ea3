/* pbtest-delay — a TCP relay that delays every byte, both ways (the
 * partition fleet's 200 ms "netem" delay where the kernel has no
 * sch_netem: tests/fleet/run.sh).
 *
 *   pbtest-delay [-d MS] [--on] [--ready FILE] PORT=HOST:PORT...
 *
 * Listens on 127.0.0.1:PORT (the loopback of the network namespace it runs
 * in) for each PORT=HOST:PORT pair and relays every connection to
 * HOST:PORT (an IPv4 address). While the delay is on, every chunk read
 * from either side is written to the other side MS milliseconds (default
 * 200) after it was read, in order; while it is off, at once (a chunk
 * never overtakes an earlier one). SIGUSR1 turns the delay on, SIGUSR2
 * off (--on: on from the start); each switch is logged on stderr with the
 * bytes delayed so far. An end of stream is passed on (shutdown) after
 * the same delay; an error on either side closes the pair.
 *
 * --ready FILE is created once every port listens. SIGTERM/SIGINT: exit
 * 0, after "pbtest-delay: N connections, B bytes delayed" on stderr.
 * Exit 64 on usage, 1 when a port cannot be bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 8
#define MAX_PAIRS 256
#define CHUNK 16384
#define QUEUE_CAP (1 << 20) /* bytes held per direction before reading stops */

struct chunk {
	struct chunk *next;
	int64_t due_ms;
	size_t len, off; /* len 0: the end of the stream */
	char data[];
};

/* one direction: bytes read from `from`, waiting to be written to `to` */
struct pipe_dir {
	struct chunk *head, *tail;
	size_t queued;
	int eof_read; /* no more reading from `from` */
};

struct pair {
	int fd[2]; /* 0: the client, 1: the upstream (-1: unused pair) */
	int connecting;
	struct pipe_dir dir[2]; /* dir[i]: from fd[i] to fd[!i] */
	int shut[2];		/* fd[i] had its write side shut */
};

struct listener {
	int fd;
	struct sockaddr_in to;
};

static volatile sig_atomic_t sig_on, sig_off, sig_stop;
static void on_usr1(int s) { (void)s; sig_on = 1; }
static void on_usr2(int s) { (void)s; sig_off = 1; }
static void on_stop(int s) { (void)s; sig_stop = 1; }

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void dir_release(struct pipe_dir *d)
{
	struct chunk *c = d->head, *n;

	for (; c; c = n) {
		n = c->next;
		free(c);
	}
	memset(d, 0, sizeof(*d));
}

static void pair_close(struct pair *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
		dir_release(&p->dir[i]);
		p->shut[i] = 0;
	}
	p->connecting = 0;
}

/* appends LEN bytes (0: the end of the stream) due at DUE, never before
 * the chunk ahead of it; 0, or -1 out of memory */
static int dir_push(struct pipe_dir *d, const char *buf, size_t len, int64_t due)
{
	struct chunk *c = malloc(sizeof(*c) + len);

	if (!c)
		return -1;
	c->next = NULL;
	c->due_ms = d->tail && d->tail->due_ms > due ? d->tail->due_ms : due;
	c->len = len;
	c->off = 0;
	if (len)
		memcpy(c->data, buf, len);
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued += len;
	return 0;
}

/* reads what fd[i] has into dir[i]; -1 when the pair must close */
static int pair_read(struct pair *p, int i, int64_t delay, uint64_t *delayed)
{
	char buf[CHUNK];
	ssize_t n = read(p->fd[i], buf, sizeof(buf));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		p->dir[i].eof_read = 1;
	if (n > 0 && delay)
		*delayed += (uint64_t)n;
	return dir_push(&p->dir[i], buf, (size_t)n, now_ms() + delay);
}

/* writes the due chunks of dir[i] to fd[!i]; -1 when the pair must close */
static int pair_write(struct pair *p, int i, int64_t now)
{
	struct pipe_dir *d = &p->dir[i];
	int to = p->fd[!i];

	while (d->head && d->head->due_ms <= now) {
		struct chunk *c = d->head;

		if (c->len == 0) {
			shutdown(to, SHUT_WR);
			p->shut[!i] = 1;
		} else {
			ssize_t n = write(to, c->data + c->off, c->len - c->off);

			if (n < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			c->off += (size_t)n;
			d->queued -= (size_t)n;
			if (c->off < c->len)
				return 0;
		}
		d->head = c->next;
		if (!d->head)
			d->tail = NULL;
		free(c);
	}
	return 0;
}

static int parse_pair(const char *arg, struct listener *l)
{
	char host[64];
	unsigned port, to_port;
	struct sockaddr_in a;
	int one = 1;

	if (sscanf(arg, "%u=%63[0-9.]:%u", &port, host, &to_port) != 3 || !port || port > 65535 ||
	    !to_port || to_port > 65535)
		return -1;
	memset(&l->to, 0, sizeof(l->to));
	l->to.sin_family = AF_INET;
	l->to.sin_port = htons((uint16_t)to_port);
	if (inet_pton(AF_INET, host, &l->to.sin_addr) != 1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -2;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l->fd, 64) < 0 || nonblock(l->fd) < 0) {
		fprintf(stderr, "pbtest-delay: 127.0.0.1:%u: %s\n", port, strerror(errno));
		close(l->fd);
		return -2;
	}
	return 0;
}

static void accept_one(struct listener *l, struct pair *pairs, unsigned long *nconn)
{
	int c = accept(l->fd, NULL, NULL), u, one = 1;
	struct pair *p = NULL;

	if (c < 0)
		return;
	for (int i = 0; i < MAX_PAIRS && !p; i++)
		if (pairs[i].fd[0] < 0)
			p = &pairs[i];
	u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!p || u < 0 || nonblock(c) < 0 || nonblock(u) < 0 ||
	    (connect(u, (struct sockaddr *)&l->to, sizeof(l->to)) < 0 && errno != EINPROGRESS)) {
		close(c);
		if (u >= 0)
			close(u);
		return;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd[0] = c;
	p->fd[1] = u;
	p->connecting = 1;
	(*nconn)++;
}

int main(int argc, char **argv)
{
	static struct pair pairs[MAX_PAIRS];
	struct listener ls[MAX_LISTEN];
	struct pollfd pfd[MAX_LISTEN + 2 * MAX_PAIRS];
	struct pair *owner[MAX_LISTEN + 2 * MAX_PAIRS];
	int side[MAX_LISTEN + 2 * MAX_PAIRS];
	const char *ready = NULL;
	int64_t delay_ms = 200, delay = 0;
	uint64_t delayed = 0;
	unsigned long nconn = 0;
	int nl = 0, bad = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc)
			delay_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--on"))
			delay = 1;
		else if (!strcmp(argv[i], "--ready") && i + 1 < argc)
			ready = argv[++i];
		else if (argv[i][0] != '-' && nl < MAX_LISTEN) {
			int r = parse_pair(argv[i], &ls[nl]);

			if (r == -2)
				return 1;
			if (r < 0)
				bad = 1;
			else
				nl++;
		} else
			bad = 1;
	}
	if (bad || !nl || delay_ms < 0) {
		fprintf(stderr, "usage: pbtest-delay [-d MS] [--on] [--ready FILE] PORT=HOST:PORT...\n");
		return EX_USAGE;
	}
	delay = delay ? delay_ms : 0;
	for (int i = 0; i < MAX_PAIRS; i++)
		pairs[i].fd[0] = pairs[i].fd[1] = -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fclose(f)) {
			fprintf(stderr, "pbtest-delay: %s: cannot create\n", ready);
			return 1;
		}
	}
	while (!sig_stop) {
		int64_t now = now_ms(), timeout = 100;
		nfds_t n = 0;

		if (sig_on || sig_off) {
			delay = sig_off ? 0 : delay_ms; /* both at once: off */
			sig_on = sig_off = 0;
			fprintf(stderr, "pbtest-delay: delay %lld ms (%llu bytes delayed so far)\n",
				(long long)delay, (unsigned long long)delayed);
		}
		for (int i = 0; i < nl; i++) {
			pfd[n] = (struct pollfd){ ls[i].fd, POLLIN, 0 };
			owner[n++] = NULL;
		}
		for (int i = 0; i < MAX_PAIRS; i++) {
			struct pair *p = &pairs[i];

			if (p->fd[0] < 0)
				continue;
			for (int s = 0; s < 2; s++) {
				short ev = 0;
				struct pipe_dir *in = &p->dir[s], *out = &p->dir[!s];

				if (!(s == 1 && p->connecting) && !in->eof_read && in->queued < QUEUE_CAP)
					ev |= POLLIN;
				if (s == 1 && p->connecting)
					ev |= POLLOUT;
				else if (!(s == 1 && p->connecting) && out->head) {
					if (out->head->due_ms <= now)
						ev |= POLLOUT;
					else if (out->head->due_ms - now < timeout)
						timeout = out->head->due_ms - now;
				}
				/* nothing wanted: left out, or a hung-up socket would wake poll at once */
				pfd[n] = (struct pollfd){ ev ? p->fd[s] : -1, ev, 0 };
				side[n] = s;
				owner[n++] = p;
			}
		}
		if (poll(pfd, n, (int)timeout) < 0 && errno != EINTR)
			break;
		now = now_ms();
		for (nfds_t k = 0; k < n; k++) {
			struct pair *p = owner[k];
			int s, err = 0;
			socklen_t el = sizeof(err);

			if (!p) {
				if (pfd[k].revents & POLLIN)
					accept_one(&ls[k], pairs, &nconn);
				continue;
			}
			if (p->fd[0] < 0)
				continue; /* closed by its other half this round */
			s = side[k];
			if (pfd[k].revents & POLLERR) {
				pair_close(p);
				continue;
			}
			if (s == 1 && p->connecting) {
				if (!(pfd[k].revents & (POLLOUT | POLLERR | POLLHUP)))
					continue;
				if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
					pair_close(p);
					continue;
				}
				p->connecting = 0;
				continue;
			}
			if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && !p->dir[s].eof_read &&
			    pair_read(p, s, delay, &delayed) < 0) {
				pair_close(p);
				continue;
			}
			if (pair_write(p, !s, now) < 0) {
				pair_close(p);
				continue;
			}
			/* both ends passed on and written: done */
			if (p->shut[0] && p->shut[1] && !p->dir[0].head && !p->dir[1].head)
				pair_close(p);
		}
	}
	fprintf(stderr, "pbtest-delay: %lu connections, %llu bytes delayed\n", nconn,
		(unsigned long long)delayed);
	for (int i = 0; i < MAX_PAIRS; i++)
		if (pairs[i].fd[0] >= 0)
			pair_close(&pairs[i]);
	for (int i = 0; i < nl; i++)
		close(ls[i].fd);
	return 0;
}
