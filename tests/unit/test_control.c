/* test_control.c — the control socket: round trips with a forked client
 * while this process serves, socket mode, stale and live sockets, bounds
 * on silent, greedy and too many clients. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "pbtime.h"
#include "suite_main.h"

static char tmpdir[64];
static char sock[100];

static void setup_tmp(void)
{
	strcpy(tmpdir, "/tmp/pb-control-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sock, sizeof(sock), "%s/control.sock", tmpdir);
	signal(SIGPIPE, SIG_IGN);
}

static void teardown_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

struct seen {
	int calls;
	char last[300];
	size_t big;	/* answer "status-big" with this many bytes */
};

static char *handler(const char *verb, void *ctx)
{
	struct seen *s = ctx;
	char *out = NULL;

	s->calls++;
	snprintf(s->last, sizeof(s->last), "%s", verb);
	if (!strcmp(verb, "status")) {
		out = strdup("{\"state\":\"idle\",\"paused\":false}");
	} else if (!strcmp(verb, "big")) {
		out = malloc(s->big + 1);
		memset(out, 'x', s->big);
		out[0] = '"';
		out[s->big - 1] = '"';
		out[s->big] = '\0';
	} else if (asprintf(&out, "{\"error\":\"unknown verb '%s'\"}", verb) < 0) {
		out = NULL;
	}
	return out;
}

/* A client in a child process: what pb_control_call returned, as
 * "OK <answer>" or "ERR <code> <message>", comes back on a pipe. */
struct call {
	pid_t pid;
	int fd;
	char *got;
	size_t len;
};

static void call_start(struct call *k, const char *path, const char *verb, int timeout_ms)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	k->pid = fork();
	ck_assert_int_ge(k->pid, 0);
	if (k->pid == 0) {
		struct pb_err err = PB_ERR_INIT;
		char *res = pb_control_call(path, verb, timeout_ms, &err);
		FILE *f = fdopen(p[1], "w");

		close(p[0]);
		if (res)
			fprintf(f, "OK %s", res);
		else
			fprintf(f, "ERR %d %s", err.code, err.msg);
		fclose(f);
		free(res);
		_exit(0);
	}
	close(p[1]);
	k->fd = p[0];
	fcntl(k->fd, F_SETFL, O_NONBLOCK);
	k->got = NULL;
	k->len = 0;
}

/* Reads what the child has said; 1 once it is done. */
static int call_poll(struct call *k)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(k->fd, buf, sizeof(buf))) > 0) {
		k->got = realloc(k->got, k->len + (size_t)n + 1);
		memcpy(k->got + k->len, buf, (size_t)n);
		k->len += (size_t)n;
		k->got[k->len] = '\0';
	}
	if (n == 0) {
		int st;

		close(k->fd);
		k->fd = -1;
		ck_assert_int_eq(waitpid(k->pid, &st, 0), k->pid);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		if (!k->got)
			k->got = strdup("");
		return 1;
	}
	return 0;
}

/* Serves c (at time now_ms, or the real clock when now_ms < 0) until the
 * call is done or 10 s passed. */
static void serve_until_done(struct pb_control *c, struct call *k, int64_t now_ms)
{
	int64_t deadline = pb_mono_ms() + 10000;

	while (pb_mono_ms() < deadline) {
		struct pollfd fds[20];
		int n = c ? pb_control_pollfds(c, fds, 19) : 0;

		fds[n++] = (struct pollfd){ .fd = k->fd, .events = POLLIN };
		ck_assert_int_ge(poll(fds, (nfds_t)n, 100), 0);
		if (c)
			pb_control_handle(c, now_ms < 0 ? pb_mono_ms() : now_ms);
		if (call_poll(k))
			return;
	}
	ck_abort_msg("the client did not finish");
}

static char *call_served(struct pb_control *c, const char *verb, int64_t now_ms)
{
	struct call k;

	call_start(&k, sock, verb, 5000);
	serve_until_done(c, &k, now_ms);
	return k.got;
}

/* A raw connection from this process, left silent. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* 1 when the server closed fd (EOF or reset), 0 when it is still open. */
static int closed_by_server(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

START_TEST(status_round_trip)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	char *got;

	ck_assert_msg(c != NULL, "%s", err.msg);
	got = call_served(c, "status", -1);
	ck_assert_str_eq(got, "OK {\"state\":\"idle\",\"paused\":false}");
	ck_assert_str_eq(s.last, "status");
	free(got);
	got = call_served(c, "provision-now", -1);
	ck_assert_str_eq(s.last, "provision-now");
	free(got);
	ck_assert_int_eq(s.calls, 2);
	pb_control_close(c);
	/* the socket file goes with the server */
	ck_assert_int_eq(access(sock, F_OK), -1);
}
END_TEST

START_TEST(unknown_verb)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	char *got = call_served(c, "frobnicate", -1);

	ck_assert_str_eq(got, "OK {\"error\":\"unknown verb 'frobnicate'\"}");
	free(got);
	pb_control_close(c);
}
END_TEST

START_TEST(socket_mode_0600)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	mode_t old = umask(0);	/* a careless umask does not widen it */
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	struct stat st;

	/* the process umask is given back */
	ck_assert_int_eq(umask(old), 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	pb_control_close(c);
}
END_TEST

START_TEST(stale_socket_replaced)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct pb_control *c;
	char *got;

	/* a daemon that died without cleaning up leaves its socket file */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(access(sock, F_OK), 0);
	c = pb_control_listen(sock, handler, &s, &err);
	ck_assert_msg(c != NULL, "%s", err.msg);
	got = call_served(c, "status", -1);
	ck_assert_str_eq(got, "OK {\"state\":\"idle\",\"paused\":false}");
	free(got);
	pb_control_close(c);
}
END_TEST

START_TEST(live_socket_refused)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	struct pb_control *c2;
	char expect[256], *got;

	ck_assert_ptr_nonnull(c);
	c2 = pb_control_listen(sock, handler, &s, &err);
	ck_assert_ptr_null(c2);
	ck_assert_int_eq(err.code, EX_TEMPFAIL);
	snprintf(expect, sizeof(expect), "another provbus-consumer is running on %s", sock);
	ck_assert_str_eq(err.msg, expect);
	/* the first one still serves (the probe was a silent hang-up) */
	got = call_served(c, "status", -1);
	ck_assert_str_eq(got, "OK {\"state\":\"idle\",\"paused\":false}");
	free(got);
	ck_assert_int_eq(s.calls, 1);
	pb_control_close(c);
}
END_TEST

/* A newer daemon that took the path over keeps its socket when the old
 * one closes. */
START_TEST(close_leaves_a_replaced_socket)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	char moved[160];

	ck_assert_ptr_nonnull(c);
	snprintf(moved, sizeof(moved), "%s/other", tmpdir);
	ck_assert_int_eq(rename(sock, moved), 0);
	ck_assert_int_eq(symlink(moved, sock), 0);	/* some other file on the path */
	pb_control_close(c);
	ck_assert_int_eq(access(moved, F_OK), 0);
	ck_assert_int_eq(unlink(sock), 0);
}
END_TEST

START_TEST(not_a_socket)
{
	struct pb_err err = PB_ERR_INIT;
	FILE *f = fopen(sock, "w");

	fclose(f);
	ck_assert_ptr_null(pb_control_listen(sock, handler, NULL, &err));
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_ptr_nonnull(strstr(err.msg, sock));
	ck_assert_ptr_nonnull(strstr(err.msg, "not a socket"));
	ck_assert_int_eq(access(sock, F_OK), 0);	/* not removed */
}
END_TEST

START_TEST(path_too_long)
{
	struct pb_err err = PB_ERR_INIT;
	char path[300];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_ptr_null(pb_control_listen(path, handler, NULL, &err));
	ck_assert_int_eq(err.code, EX_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
	pb_err_clear(&err);
	ck_assert_ptr_null(pb_control_call(path, "status", 100, &err));
	ck_assert_int_eq(err.code, EX_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
}
END_TEST

START_TEST(missing_directory)
{
	struct pb_err err = PB_ERR_INIT;
	char path[160];

	snprintf(path, sizeof(path), "%s/nope/control.sock", tmpdir);
	ck_assert_ptr_null(pb_control_listen(path, handler, NULL, &err));
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
}
END_TEST

START_TEST(no_server)
{
	struct pb_err err = PB_ERR_INIT;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char expect[256];
	int fd;

	snprintf(expect, sizeof(expect), "no provbus-consumer answers on %s (is it running?)", sock);
	/* no file */
	ck_assert_ptr_null(pb_control_call(sock, "status", 1000, &err));
	ck_assert_int_eq(err.code, EX_UNAVAILABLE);
	ck_assert_str_eq(err.msg, expect);
	/* a stale file */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	pb_err_clear(&err);
	ck_assert_ptr_null(pb_control_call(sock, "status", 1000, &err));
	ck_assert_int_eq(err.code, EX_UNAVAILABLE);
	ck_assert_str_eq(err.msg, expect);
}
END_TEST

/* A daemon that accepts but never answers: the call gives up in time. */
START_TEST(client_timeout)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	int64_t t0 = pb_mono_ms(), took;

	ck_assert_ptr_null(pb_control_call(sock, "status", 300, &err));
	took = pb_mono_ms() - t0;
	ck_assert_int_eq(err.code, EX_TEMPFAIL);
	ck_assert_ptr_nonnull(strstr(err.msg, sock));
	ck_assert_int_ge(took, 250);
	ck_assert_int_lt(took, 2000);
	pb_control_close(c);
}
END_TEST

/* A silent client holds its slot until its deadline and no longer; the
 * others are served meanwhile. */
START_TEST(silent_client_dropped)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	int64_t t = 1000000;
	int silent = raw_connect(sock);
	char *got;

	ck_assert_int_eq(pb_control_timeout_ms(c, t), -1);
	pb_control_handle(c, t);	/* accepted at t */
	ck_assert_int_eq(pb_control_timeout_ms(c, t + 500), 1500);
	got = call_served(c, "status", t + 1000);
	ck_assert_str_eq(got, "OK {\"state\":\"idle\",\"paused\":false}");
	free(got);
	pb_control_handle(c, t + 1999);
	ck_assert(!closed_by_server(silent));
	ck_assert_int_eq(pb_control_timeout_ms(c, t + 1999), 1);
	pb_control_handle(c, t + 2000);
	ck_assert(closed_by_server(silent));
	ck_assert_int_eq(pb_control_timeout_ms(c, t + 2000), -1);
	ck_assert_int_eq(s.calls, 1);
	close(silent);
	pb_control_close(c);
}
END_TEST

/* 16 silent clients fill every slot: the 17th waits in the backlog (not
 * listened for meanwhile) and is served once they are dropped. */
START_TEST(too_many_clients_wait)
{
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	struct pollfd fds[40];
	int silent[16], n;
	int64_t t = 5000;
	struct call k;

	for (int i = 0; i < 16; i++)
		silent[i] = raw_connect(sock);
	pb_control_handle(c, t);
	n = pb_control_pollfds(c, fds, 40);
	ck_assert_int_eq(n, 16);	/* clients only: the listener is full */
	call_start(&k, sock, "status", 5000);
	for (int i = 0; i < 5; i++) {
		poll(NULL, 0, 20);
		pb_control_handle(c, t + 100);
		ck_assert_int_eq(call_poll(&k), 0);
	}
	ck_assert_int_eq(s.calls, 0);
	serve_until_done(c, &k, t + 2000);
	ck_assert_str_eq(k.got, "OK {\"state\":\"idle\",\"paused\":false}");
	free(k.got);
	for (int i = 0; i < 16; i++) {
		ck_assert(closed_by_server(silent[i]));
		close(silent[i]);
	}
	pb_control_close(c);
}
END_TEST

/* An answer far bigger than a socket buffer goes out in pieces while the
 * server keeps serving. */
START_TEST(big_answer)
{
	struct seen s = { .big = 600000 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	char *got = call_served(c, "big", -1);

	ck_assert_uint_eq(strlen(got), 3 + s.big);
	ck_assert_int_eq(got[3], '"');
	ck_assert_int_eq(got[3 + s.big - 1], '"');
	free(got);
	pb_control_close(c);
}
END_TEST

/* Raw requests: no newline before the hang-up, CRLF, an overlong line. */
START_TEST(raw_requests)
{
	static const struct {
		const char *send;
		int shut;
		const char *answer;
		const char *verb;
	} cases[] = {
		{ "status", 1, "{\"state\":\"idle\",\"paused\":false}\n", "status" },
		{ "pause\r\n", 0, "{\"error\":\"unknown verb 'pause'\"}\n", "pause" },
		{ "status\nextra\n", 0, "{\"state\":\"idle\",\"paused\":false}\n", "status" },
		{ "\n", 0, "{\"error\":\"unknown verb ''\"}\n", "" },
	};
	struct seen s = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_control *c = pb_control_listen(sock, handler, &s, &err);
	char buf[512], longreq[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = raw_connect(sock);
		ssize_t n, len = 0;

		ck_assert_int_eq(write(fd, cases[i].send, strlen(cases[i].send)),
				 (ssize_t)strlen(cases[i].send));
		if (cases[i].shut)
			shutdown(fd, SHUT_WR);
		pb_control_handle(c, 0);
		while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
			len += n;
		buf[len] = '\0';
		ck_assert_str_eq(buf, cases[i].answer);
		ck_assert_str_eq(s.last, cases[i].verb);
		close(fd);
	}
	/* longer than any verb: an error, and the handler is not called */
	s.calls = 0;
	memset(longreq, 'v', sizeof(longreq));
	int fd = raw_connect(sock);
	ssize_t n, len = 0;

	ck_assert_int_eq(write(fd, longreq, sizeof(longreq)), (ssize_t)sizeof(longreq));
	pb_control_handle(c, 0);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	buf[len] = '\0';
	ck_assert_str_eq(buf, "{\"error\":\"request too long\"}\n");
	ck_assert_int_eq(s.calls, 0);
	close(fd);
	/* a client that hangs up without a word costs nothing */
	fd = raw_connect(sock);
	close(fd);
	pb_control_handle(c, 0);
	ck_assert_int_eq(s.calls, 0);
	ck_assert_int_eq(pb_control_timeout_ms(c, 0), -1);
	pb_control_close(c);
	pb_control_close(NULL);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, status_round_trip);
	tcase_add_test(tc, unknown_verb);
	tcase_add_test(tc, socket_mode_0600);
	tcase_add_test(tc, stale_socket_replaced);
	tcase_add_test(tc, live_socket_refused);
	tcase_add_test(tc, close_leaves_a_replaced_socket);
	tcase_add_test(tc, not_a_socket);
	tcase_add_test(tc, path_too_long);
	tcase_add_test(tc, missing_directory);
	tcase_add_test(tc, no_server);
	tcase_add_test(tc, client_timeout);
	tcase_add_test(tc, silent_client_dropped);
	tcase_add_test(tc, too_many_clients_wait);
	tcase_add_test(tc, big_answer);
	tcase_add_test(tc, raw_requests);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(control_suite());
}
