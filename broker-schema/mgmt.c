/* mgmt.c — a policy through RabbitMQ's management HTTP API (mgmt.h). */
#include "mgmt.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "digest.h"

#define MGMT_TIMEOUT_MS 10000
#define MGMT_DEFAULT_PORT 15672

int mgmt_parse_url(const char *url, struct mgmt_target *m, struct pb_err *err)
{
	const char *p = url, *colon, *end;
	char *tail;
	long port = MGMT_DEFAULT_PORT;

	if (strncmp(p, "http://", 7))
		return pb_err_set(err, EX_USAGE, "--management-url %s: want http://HOST[:PORT]", url);
	p += 7;
	end = p + strcspn(p, "/");
	colon = memchr(p, ':', (size_t)(end - p));
	if (colon) {
		port = strtol(colon + 1, &tail, 10);
		if (tail != end || port <= 0 || port > 65535)
			return pb_err_set(err, EX_USAGE, "--management-url %s: bad port", url);
	}
	if ((colon ? colon : end) == p || (size_t)((colon ? colon : end) - p) >= sizeof(m->host))
		return pb_err_set(err, EX_USAGE, "--management-url %s: want http://HOST[:PORT]", url);
	snprintf(m->host, sizeof(m->host), "%.*s", (int)((colon ? colon : end) - p), p);
	m->port = (int)port;
	return 0;
}

/* s percent-encoded (all but RFC 3986's unreserved) into out */
static void pct(const char *s, char *out, size_t size)
{
	size_t j = 0;

	for (; *s && j + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("-._~", ch))
			out[j++] = (char)ch;
		else
			j += (size_t)snprintf(out + j, size - j, "%%%02X", ch);
	}
	out[j] = '\0';
}

/* strerror, lowercase as every message */
static const char *why(int e)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static int dial(const struct mgmt_target *m, struct pb_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	char port[16];
	int fd = -1, e;

	snprintf(port, sizeof(port), "%d", m->port);
	if ((e = getaddrinfo(m->host, port, &hints, &res)) != 0 || !res) {
		pb_err_set(err, EX_UNAVAILABLE, "management API http://%s:%d: %s", m->host, m->port,
			   gai_strerror(e));
		goto out;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen)) {
		pb_err_set(err, EX_UNAVAILABLE, "management API http://%s:%d: %s", m->host, m->port,
			   why(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the status line's code (the rest of the answer is not needed). */
static int read_status(int fd, char *buf, size_t size)
{
	size_t got = 0;
	int code = -1;

	while (got + 1 < size && !memchr(buf, '\n', got)) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;
		if (poll(&pfd, 1, MGMT_TIMEOUT_MS) != 1)
			break;
		r = read(fd, buf + got, size - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		code = -1;
	return code;
}

int mgmt_put_policy(const struct mgmt_target *m, const char *vhost, const struct topo_policy *p,
		    struct pb_err *err)
{
	char v[512], name[256], *body = NULL, *cred = NULL, *auth = NULL, head[2048], answer[512];
	json_t *j = NULL;
	int fd = -1, code, rc = -1;
	size_t clen;

	pct(vhost, v, sizeof(v));
	pct(p->name, name, sizeof(name));
	j = json_pack("{s:s, s:{s:s}, s:s, s:i}", "pattern", p->pattern, "definition", "max-age",
		      p->max_age, "apply-to", "queues", "priority", 0);
	clen = strlen(m->user) + 1 + strlen(m->password);
	if (!j || !(body = json_dumps(j, JSON_COMPACT)) || !(cred = malloc(clen + 1)) ||
	    !(auth = malloc(pb_base64_len(clen)))) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	snprintf(cred, clen + 1, "%s:%s", m->user, m->password);
	pb_base64_encode(cred, clen, auth);
	if ((fd = dial(m, err)) < 0)
		goto out;
	int n = snprintf(head, sizeof(head),
			 "PUT /api/policies/%s/%s HTTP/1.1\r\nHost: %s:%d\r\n"
			 "Authorization: Basic %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 v, name, m->host, m->port, auth, strlen(body));
	if (n < 0 || (size_t)n >= sizeof(head) || write_all(fd, head, (size_t)n) ||
	    write_all(fd, body, strlen(body))) {
		pb_err_set(err, EX_UNAVAILABLE, "management API http://%s:%d: cannot send: %s", m->host,
			   m->port, why(errno));
		goto out;
	}
	explicit_bzero(head, sizeof(head));
	code = read_status(fd, answer, sizeof(answer));
	if (code == 201 || code == 204 || code == 200)
		rc = 0;
	else if (code == 401 || code == 403)
		pb_err_set(err, EX_NOPERM, "management API http://%s:%d: setting policy %s refused (HTTP %d): the user needs the policymaker or administrator tag",
			   m->host, m->port, p->name, code);
	else if (code < 0)
		pb_err_set(err, EX_UNAVAILABLE, "management API http://%s:%d: no HTTP answer (is it the management port?)",
			   m->host, m->port);
	else
		pb_err_set(err, EX_PROTOCOL, "management API http://%s:%d: setting policy %s: HTTP %d",
			   m->host, m->port, p->name, code);
out:
	explicit_bzero(head, sizeof(head));
	if (fd >= 0)
		close(fd);
	if (cred) {
		explicit_bzero(cred, clen);
		free(cred);
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(body);
	json_decref(j);
	return rc;
}

void mgmt_policy_command(const char *vhost, const struct topo_policy *p, char *buf, size_t size)
{
	snprintf(buf, size,
		 "rabbitmqctl set_policy -p '%s' --apply-to queues %s '%s' '{\"max-age\":\"%s\"}'",
		 vhost, p->name, p->pattern, p->max_age);
}
