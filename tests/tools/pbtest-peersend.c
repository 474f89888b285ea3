/* pbtest-peersend — bursts of events to the peers of make bench, without a
 * process per event (a `serf event` or `etcdctl put` costs a Go process
 * start: 200 of them take seconds, not the one second a burst should).
 *
 *   pbtest-peersend serf HOST:PORT NAME --count N [--rate R] [--coalesce]
 *   pbtest-peersend etcd HOST:PORT KEY --count N [--rate R] [--conns C]
 *
 * serf: the agent's RPC protocol (MsgPack over TCP, what `serf event`
 * speaks): a handshake, then N "event" commands named NAME with payloads
 * "v0".."v{N-1}", Coalesce false unless --coalesce, each answered before
 * the next is sent.
 * etcd: N puts of KEY = "v0".."v{N-1}" through etcd's JSON gateway (POST
 * /v3/kv/put, HTTP/1.1 keep-alive) over C connections (default 8), one
 * request in flight on each, so concurrent puts share etcd's raft batches
 * as concurrent etcdctl processes would.
 * --rate R spreads the sends evenly at R per second (default: as fast as
 * they go). Prints
 *   sent N ms MS first_us F last_us L
 * (MS from the first send to the last answer; F, L: wall clock µs of the
 * first and the last send). Exit 0 when every send was answered without
 * an error, 1 otherwise, 64 on usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void)
{
	fprintf(stderr, "usage: pbtest-peersend serf HOST:PORT NAME --count N [--rate R] [--coalesce]\n"
		"       pbtest-peersend etcd HOST:PORT KEY --count N [--rate R] [--conns C]\n");
	exit(EX_USAGE);
}

static int dial(const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		usage();
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "pbtest-peersend: %s: %s\n", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sleeps until the monotonic time due_us */
static void pace(int64_t due_us)
{
	int64_t now = mono_us();

	if (due_us > now)
		usleep((useconds_t)(due_us - now));
}

/* ---- serf: MsgPack, only what the RPC needs */

struct buf {
	unsigned char d[512];
	size_t n;
};

static void mp_byte(struct buf *b, unsigned c)
{
	if (b->n < sizeof(b->d))
		b->d[b->n++] = (unsigned char)c;
}

static void mp_str(struct buf *b, const char *s)
{
	size_t len = strlen(s);

	if (len < 32) {
		mp_byte(b, 0xa0 | (unsigned)len);
	} else {
		mp_byte(b, 0xd9);
		mp_byte(b, (unsigned)len);
	}
	for (size_t i = 0; i < len; i++)
		mp_byte(b, (unsigned char)s[i]);
}

static void mp_uint(struct buf *b, uint32_t v)
{
	if (v < 128) {
		mp_byte(b, v);
	} else {
		mp_byte(b, 0xce);
		for (int i = 3; i >= 0; i--)
			mp_byte(b, (v >> (8 * i)) & 0xff);
	}
}

static void mp_bin(struct buf *b, const char *s)
{
	size_t len = strlen(s);

	mp_byte(b, 0xc4);
	mp_byte(b, (unsigned)len);
	for (size_t i = 0; i < len; i++)
		mp_byte(b, (unsigned char)s[i]);
}

static void serf_header(struct buf *b, const char *command, uint32_t seq)
{
	mp_byte(b, 0x82);
	mp_str(b, "Command");
	mp_str(b, command);
	mp_str(b, "Seq");
	mp_uint(b, seq);
}

struct reader {
	int fd;
	unsigned char d[4096];
	size_t n, at;
};

static int rd_byte(struct reader *r)
{
	if (r->at == r->n) {
		ssize_t n = read(r->fd, r->d, sizeof(r->d));
		if (n <= 0)
			return -1;
		r->n = (size_t)n;
		r->at = 0;
	}
	return r->d[r->at++];
}

/* Reads one MsgPack value; for a string, its length in *slen (else 0).
 * Maps and arrays are read whole. Returns 0, or -1 on EOF or a type this
 * reader does not know. */
static int mp_skip(struct reader *r, size_t *slen)
{
	int c = rd_byte(r);
	size_t len = 0, items = 0, i;

	*slen = 0;
	if (c < 0)
		return -1;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 0;
	if ((c & 0xe0) == 0xa0) {
		len = (size_t)(c & 0x1f);
		*slen = len;
	} else if ((c & 0xf0) == 0x80) {
		items = 2 * (size_t)(c & 0x0f);
	} else if ((c & 0xf0) == 0x90) {
		items = (size_t)(c & 0x0f);
	} else if (c == 0xcc || c == 0xd0) {
		len = 1;
	} else if (c == 0xcd || c == 0xd1) {
		len = 2;
	} else if (c == 0xce || c == 0xd2) {
		len = 4;
	} else if (c == 0xcf || c == 0xd3) {
		len = 8;
	} else if (c == 0xd9 || c == 0xc4) {
		int l = rd_byte(r);
		if (l < 0)
			return -1;
		len = (size_t)l;
		*slen = len;
	} else if (c == 0xda || c == 0xc5) {
		int h = rd_byte(r), l = rd_byte(r);
		if (h < 0 || l < 0)
			return -1;
		len = (size_t)h << 8 | (size_t)l;
		*slen = len;
	} else {
		return -1;
	}
	for (i = 0; i < len; i++)
		if (rd_byte(r) < 0)
			return -1;
	for (i = 0; i < items; i++) {
		size_t dummy;
		if (mp_skip(r, &dummy) < 0)
			return -1;
	}
	return 0;
}

/* Reads a response header {"Seq": n, "Error": "..."}; 0 when Error is
 * empty, 1 when it is not, -1 on a broken stream. */
static int serf_response(struct reader *r)
{
	int c = rd_byte(r), err = 0;

	if (c < 0 || (c & 0xf0) != 0x80)
		return -1;
	for (int i = 0; i < (c & 0x0f); i++) {
		size_t klen, vlen;
		char key[16] = "";
		/* the key: read its bytes to know which it is */
		int k = rd_byte(r);
		if (k < 0 || (k & 0xe0) != 0xa0)
			return -1;
		klen = (size_t)(k & 0x1f);
		for (size_t j = 0; j < klen; j++) {
			int ch = rd_byte(r);
			if (ch < 0)
				return -1;
			if (j < sizeof(key) - 1)
				key[j] = (char)ch;
		}
		if (mp_skip(r, &vlen) < 0)
			return -1;
		if (!strcmp(key, "Error") && vlen > 0)
			err = 1;
	}
	return err;
}

static int cmd_serf(const char *addr, const char *name, long count, double rate, int coalesce)
{
	struct reader r = { .fd = dial(addr) };
	struct buf b = { .n = 0 };
	int64_t t0, first = 0, last = 0;
	long errors = 0;

	if (r.fd < 0)
		return 1;
	serf_header(&b, "handshake", 0);
	mp_byte(&b, 0x81);
	mp_str(&b, "Version");
	mp_uint(&b, 1);
	if (write_all(r.fd, b.d, b.n) < 0 || serf_response(&r) != 0) {
		fprintf(stderr, "pbtest-peersend: %s: serf handshake failed\n", addr);
		close(r.fd);
		return 1;
	}
	t0 = mono_us();
	for (long i = 0; i < count; i++) {
		char payload[32];

		if (rate > 0)
			pace(t0 + (int64_t)((double)i * 1e6 / rate));
		snprintf(payload, sizeof(payload), "v%ld", i);
		b.n = 0;
		serf_header(&b, "event", (uint32_t)(i + 1));
		mp_byte(&b, 0x83);
		mp_str(&b, "Name");
		mp_str(&b, name);
		mp_str(&b, "Payload");
		mp_bin(&b, payload);
		mp_str(&b, "Coalesce");
		mp_byte(&b, coalesce ? 0xc3 : 0xc2);
		last = real_us();
		if (!first)
			first = last;
		if (write_all(r.fd, b.d, b.n) < 0) {
			fprintf(stderr, "pbtest-peersend: %s: write failed\n", addr);
			close(r.fd);
			return 1;
		}
		int st = serf_response(&r);
		if (st < 0) {
			fprintf(stderr, "pbtest-peersend: %s: the agent closed the connection\n", addr);
			close(r.fd);
			return 1;
		}
		errors += st;
	}
	printf("sent %ld ms %.1f first_us %lld last_us %lld errors %ld\n", count,
	       (double)(mono_us() - t0) / 1000.0, (long long)first, (long long)last, errors);
	close(r.fd);
	return errors ? 1 : 0;
}

/* ---- etcd: the JSON gateway */

static void b64(const char *in, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

struct conn {
	int fd, busy;
	char in[8192];
	size_t n;
};

/* Consumes one complete HTTP response from c->in if there is one:
 * returns 1 (status 200), 2 (another status), 0 (incomplete). */
static int http_response(struct conn *c)
{
	char *end, *cl;
	size_t head, body = 0, total;
	int status;

	c->in[c->n < sizeof(c->in) ? c->n : sizeof(c->in) - 1] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	if (!end)
		return 0;
	head = (size_t)(end - c->in) + 4;
	cl = strcasestr(c->in, "\r\ncontent-length:");
	if (cl && cl < end)
		body = (size_t)strtoul(cl + 17, NULL, 10);
	total = head + body;
	if (c->n < total)
		return 0;
	status = atoi(c->in + 9);	/* "HTTP/1.1 200 OK" */
	memmove(c->in, c->in + total, c->n - total);
	c->n -= total;
	return status == 200 ? 1 : 2;
}

/* Waits (up to timeout_ms) for answers; frees the connections that got
 * one. Returns how many came, or -1 when a connection broke. */
static int etcd_collect(struct conn *cs, int nc, int timeout_ms, long *errors)
{
	struct pollfd p[MAX_CONNS];
	int got = 0;

	for (int i = 0; i < nc; i++)
		p[i] = (struct pollfd){ .fd = cs[i].busy ? cs[i].fd : -1, .events = POLLIN };
	if (poll(p, (nfds_t)nc, timeout_ms) <= 0)
		return 0;
	for (int i = 0; i < nc; i++) {
		if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(cs[i].fd, cs[i].in + cs[i].n, sizeof(cs[i].in) - 1 - cs[i].n);
		if (n <= 0)
			return -1;
		cs[i].n += (size_t)n;
		int st = http_response(&cs[i]);
		if (st) {
			cs[i].busy = 0;
			got++;
			if (st == 2)
				(*errors)++;
		}
	}
	return got;
}

static int cmd_etcd(const char *addr, const char *key, long count, double rate, int nc)
{
	struct conn cs[MAX_CONNS];
	char k64[512], v64[64], body[1024], req[2048];
	int64_t t0, first = 0, last = 0;
	long errors = 0, done = 0;
	int rc = 1, opened = 0;

	if (strlen(key) > 300)
		usage();
	b64(key, k64);
	for (; opened < nc; opened++) {
		cs[opened] = (struct conn){ .fd = dial(addr) };
		if (cs[opened].fd < 0)
			goto out;
	}
	t0 = mono_us();
	for (long i = 0; i < count; i++) {
		char v[32];
		int c = -1;

		if (rate > 0) {
			int64_t due = t0 + (int64_t)((double)i * 1e6 / rate);
			while (mono_us() < due) {
				int64_t left = (due - mono_us()) / 1000;
				int g = etcd_collect(cs, nc, left > 0 ? (int)left : 0, &errors);
				if (g < 0)
					goto broken;
				done += g;
			}
		}
		while (c < 0) {
			for (int j = 0; j < nc && c < 0; j++)
				if (!cs[j].busy)
					c = j;
			if (c < 0) {
				int g = etcd_collect(cs, nc, 10000, &errors);
				if (g < 0)
					goto broken;
				done += g;
			}
		}
		snprintf(v, sizeof(v), "v%ld", i);
		b64(v, v64);
		int blen = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
		int rlen = snprintf(req, sizeof(req),
				    "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
				    "Content-Length: %d\r\n\r\n%s", addr, blen, body);
		last = real_us();
		if (!first)
			first = last;
		if (write_all(cs[c].fd, req, (size_t)rlen) < 0)
			goto broken;
		cs[c].busy = 1;
	}
	while (done < count) {
		int g = etcd_collect(cs, nc, 10000, &errors);
		if (g <= 0)
			goto broken;
		done += g;
	}
	printf("sent %ld ms %.1f first_us %lld last_us %lld errors %ld\n", count,
	       (double)(mono_us() - t0) / 1000.0, (long long)first, (long long)last, errors);
	rc = errors ? 1 : 0;
	goto out;
broken:
	fprintf(stderr, "pbtest-peersend: %s: a connection broke or stalled (%ld of %ld answered)\n",
		addr, done, count);
out:
	for (int i = 0; i < opened; i++)
		close(cs[i].fd);
	return rc;
}

int main(int argc, char **argv)
{
	long count = -1, conns = 8;
	double rate = 0;
	int coalesce = 0;

	if (argc < 4)
		usage();
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--coalesce"))
			coalesce = 1;
		else if (i + 1 >= argc)
			usage();
		else if (!strcmp(argv[i], "--count"))
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rate"))
			rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--conns"))
			conns = atol(argv[++i]);
		else
			usage();
	}
	if (count < 0 || rate < 0 || conns < 1 || conns > MAX_CONNS)
		usage();
	if (!strcmp(argv[1], "serf"))
		return cmd_serf(argv[2], argv[3], count, rate, coalesce);
	if (!strcmp(argv[1], "etcd"))
		return cmd_etcd(argv[2], argv[3], count, rate, (int)conns);
	usage();
	return EX_USAGE;
}
