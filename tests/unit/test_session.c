/* test_session.c — the parts of session.c that need no broker: URL
 * redaction, the reconnect backoff, error translation of rabbitmq-c's two
 * error channels, table helpers, password file errors. (Connecting,
 * failover and check_exchange are covered by tests/integration/t-session.sh
 * against a real RabbitMQ.) */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "suite_main.h"

/* ---- redaction ---- */

static const struct {
	const char *in, *out;
} redact_cases[] = {
	{ "amqp://guest:guest@127.0.0.1:5672/%2Fv", "amqp://guest@127.0.0.1:5672/%2Fv" },
	{ "amqps://www-01:s3cr%40t@rmq-2:5671/provbus", "amqps://www-01@rmq-2:5671/provbus" },
	{ "amqp://www-01@rmq-1:5672/provbus", "amqp://www-01@rmq-1:5672/provbus" },
	{ "amqp://rmq-1", "amqp://rmq-1" },
	{ "amqp://u:p@h", "amqp://u@h" },
	{ "amqp://:p@h/", "amqp://@h/" },
	/* an '@' in the password (unencoded): the last '@' ends the userinfo */
	{ "amqp://u:p@ss@h:1/v", "amqp://u@h:1/v" },
	/* an '@' in the path is not userinfo */
	{ "amqp://h:1/v@x", "amqp://h:1/v@x" },
	{ "amqp://u:pw@h:1/a:b@c", "amqp://u@h:1/a:b@c" },
	{ "", "" },
};

START_TEST(test_redact)
{
	char out[256];

	pb_session_redact_url(redact_cases[_i].in, out, sizeof(out));
	ck_assert_str_eq(out, redact_cases[_i].out);
}
END_TEST

START_TEST(test_redact_truncates)
{
	char out[12];

	pb_session_redact_url("amqp://user:secret@a-long-host-name:5672/v", out, sizeof(out));
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
	ck_assert_ptr_null(strstr(out, "secret"));
	pb_session_redact_url("amqp://averyveryverylonguser:secret@h/v", out, sizeof(out));
	ck_assert_ptr_null(strstr(out, "sec"));
}
END_TEST

/* ---- backoff ---- */

START_TEST(test_backoff_bounds)
{
	struct pb_backoff b = PB_BACKOFF_INIT;
	int64_t want = 250;

	for (int round = 0; round < 3; round++) {
		want = 250;
		for (int i = 0; i < 20; i++) {
			int64_t d = pb_backoff_next(&b);
			ck_assert_int_ge(d, want / 2);
			ck_assert_int_le(d, want);
			want = want * 2 > 30000 ? 30000 : want * 2;
		}
		ck_assert_int_eq(b.cur_ms, 30000);
		pb_backoff_reset(&b);
		ck_assert_int_eq(b.cur_ms, 0);
	}
}
END_TEST

START_TEST(test_backoff_jitters)
{
	struct pb_backoff b = PB_BACKOFF_INIT;
	int64_t first = -1;
	int differ = 0;

	for (int i = 0; i < 50; i++) {
		pb_backoff_reset(&b);
		for (int k = 0; k < 10; k++)
			pb_backoff_next(&b);
		int64_t d = pb_backoff_next(&b);	/* at the 30 s cap */
		ck_assert_int_ge(d, 15000);
		ck_assert_int_le(d, 30000);
		if (first < 0)
			first = d;
		differ |= d != first;
	}
	ck_assert(differ);
}
END_TEST

/* A connection that had been healthy: the first retry within 250 ms, then
 * never more than the cap (1.5 s) apart, spread over [0, cap] (full
 * jitter), until
 * 300 s of delays; then the persistent schedule up to 30 s. */
START_TEST(test_backoff_recovering)
{
	struct pb_backoff b = PB_BACKOFF_INIT;
	int64_t lo = 1 << 30, hi = 0, sum, d;
	int at30 = 0;

	for (int round = 0; round < 200; round++) {
		pb_backoff_connected(&b, 1000);
		d = pb_backoff_lost(&b, 1000 + PB_BACKOFF_HEALTHY_MS);
		ck_assert_int_ge(d, 0);
		ck_assert_int_le(d, 250);
		for (int i = 0; i < 10; i++) {
			d = pb_backoff_next(&b);
			ck_assert_int_ge(d, 0);
			ck_assert_int_le(d, PB_BACKOFF_RECOVER_CAP_MS);
			if (i >= 4) {	/* at the cap */
				lo = d < lo ? d : lo;
				hi = d > hi ? d : hi;
			}
		}
	}
	ck_assert_int_lt(lo, 200);	/* full jitter: the whole [0, cap] */
	ck_assert_int_gt(hi, PB_BACKOFF_RECOVER_CAP_MS * 9 / 10);

	/* a long outage: past 300 s of delays, back to 30 s at most */
	pb_backoff_connected(&b, 1000);
	sum = pb_backoff_lost(&b, 100000);
	while (sum < PB_BACKOFF_RECOVER_MS) {
		d = pb_backoff_next(&b);
		ck_assert_int_le(d, PB_BACKOFF_RECOVER_CAP_MS);
		sum += d;
	}
	for (int i = 0; i < 20; i++) {
		d = pb_backoff_next(&b);
		ck_assert_int_le(d, PB_BACKOFF_MAX_MS);
		at30 += d >= PB_BACKOFF_MAX_MS / 2;
	}
	ck_assert_int_ge(at30, 10);
	ck_assert_int_eq(b.cur_ms, PB_BACKOFF_MAX_MS);
}
END_TEST

/* A connection that dies within 5 s of coming up (a flapping broker) does
 * not earn the fast schedule: the persistent one goes on growing. */
START_TEST(test_backoff_flap)
{
	struct pb_backoff b = PB_BACKOFF_INIT;
	int64_t d = 0;

	for (int i = 0; i < 12; i++) {
		pb_backoff_connected(&b, 1000);
		d = pb_backoff_lost(&b, 1000 + PB_BACKOFF_HEALTHY_MS - 1);
	}
	ck_assert_int_ge(d, PB_BACKOFF_MAX_MS / 2);
	ck_assert_int_eq(b.recovering, 0);
	/* never connected at all: the persistent schedule too */
	pb_backoff_reset(&b);
	d = pb_backoff_lost(&b, 1000000);
	ck_assert_int_ge(d, 125);
	ck_assert_int_eq(b.recovering, 0);
}
END_TEST

/* ---- error translation ---- */

static amqp_rpc_reply_t channel_close(unsigned code, const char *text, amqp_channel_close_t *c)
{
	amqp_rpc_reply_t r = { 0 };

	memset(c, 0, sizeof(*c));
	c->reply_code = (uint16_t)code;
	c->reply_text = amqp_cstring_bytes(text);
	r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
	r.reply.id = AMQP_CHANNEL_CLOSE_METHOD;
	r.reply.decoded = c;
	return r;
}

static amqp_rpc_reply_t connection_close(unsigned code, const char *text, amqp_connection_close_t *c)
{
	amqp_rpc_reply_t r = { 0 };

	memset(c, 0, sizeof(*c));
	c->reply_code = (uint16_t)code;
	c->reply_text = amqp_cstring_bytes(text);
	r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
	r.reply.id = AMQP_CONNECTION_CLOSE_METHOD;
	r.reply.decoded = c;
	return r;
}

static const struct {
	unsigned code;
	int channel;	/* 1: channel.close, 0: connection.close */
	const char *text;
	int ex;
} close_cases[] = {
	{ 403, 1, "ACCESS_REFUSED - access to exchange 'provbus.x' in vhost '/v' refused for user 'u'", EX_NOPERM },
	{ 404, 1, "NOT_FOUND - no exchange 'provbus.x' in vhost '/v'", EX_CONFIG },
	{ 406, 1, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'provbus.x'", EX_CONFIG },
	{ 406, 1, "PRECONDITION_FAILED - queue 'queue 'provbus.f.history' in vhost '/v'' does not have a replica on the local node", EX_CONFIG },
	{ 406, 0, "PRECONDITION_FAILED - replica", EX_CONFIG },
	{ 405, 1, "RESOURCE_LOCKED - cannot obtain exclusive access", EX_TEMPFAIL },
	{ 403, 0, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", EX_NOPERM },
	{ 530, 0, "NOT_ALLOWED - vhost /x not found", EX_CONFIG },
	{ 530, 0, "NOT_ALLOWED - access to vhost '/x' refused for user 'u'", EX_NOPERM },
	{ 320, 0, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", EX_TEMPFAIL },
	{ 541, 0, "INTERNAL_ERROR", EX_TEMPFAIL },
	{ 505, 0, "UNEXPECTED_FRAME - expected content header", EX_SOFTWARE },
};

START_TEST(test_reply_server_exception)
{
	struct pb_err err = PB_ERR_INIT;
	amqp_channel_close_t ch;
	amqp_connection_close_t co;
	amqp_rpc_reply_t r = close_cases[_i].channel
		? channel_close(close_cases[_i].code, close_cases[_i].text, &ch)
		: connection_close(close_cases[_i].code, close_cases[_i].text, &co);
	char want[PB_ERR_MAX];

	ck_assert_int_eq(pb_amqp_reply_err(r, "declaring exchange provbus.x", &err), -1);
	ck_assert_int_eq(err.code, close_cases[_i].ex);
	snprintf(want, sizeof(want), "declaring exchange provbus.x: %u %s", close_cases[_i].code,
		 close_cases[_i].text);
	ck_assert_str_eq(err.msg, want);
	/* the same through the method-frame entry point, without a prefix */
	pb_err_clear(&err);
	ck_assert_int_eq(pb_amqp_close_err(&r.reply, NULL, &err), -1);
	snprintf(want, sizeof(want), "%u %s", close_cases[_i].code, close_cases[_i].text);
	ck_assert_str_eq(err.msg, want);
	ck_assert_int_eq(err.code, close_cases[_i].ex);
	/* only a channel closed with 404 is "not found" */
	ck_assert_int_eq(pb_amqp_not_found(r), close_cases[_i].channel && close_cases[_i].code == 404);
	/* only a channel closed with 406 and the broker's "replica" words is
	 * a stream without a replica on this node */
	ck_assert_int_eq(pb_amqp_no_local_replica(r),
			 close_cases[_i].channel && close_cases[_i].code == 406 &&
			 strstr(close_cases[_i].text, "does not have a replica") != NULL);
}
END_TEST

static const struct {
	int status;
	int ex;
} status_cases[] = {
	{ AMQP_STATUS_HEARTBEAT_TIMEOUT, EX_TEMPFAIL },
	{ AMQP_STATUS_CONNECTION_CLOSED, EX_TEMPFAIL },
	{ AMQP_STATUS_SOCKET_CLOSED, EX_TEMPFAIL },
	{ AMQP_STATUS_SOCKET_ERROR, EX_UNAVAILABLE },
	{ AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED, EX_UNAVAILABLE },
	{ AMQP_STATUS_SSL_CONNECTION_FAILED, EX_UNAVAILABLE },
	{ AMQP_STATUS_SSL_PEER_VERIFY_FAILED, EX_UNAVAILABLE },
	{ AMQP_STATUS_BAD_URL, EX_CONFIG },
};

START_TEST(test_status)
{
	struct pb_err err = PB_ERR_INIT;
	amqp_rpc_reply_t r = { 0 };
	char want[PB_ERR_MAX];

	ck_assert_int_eq(pb_amqp_status_err(status_cases[_i].status, "publishing", &err), -1);
	ck_assert_int_eq(err.code, status_cases[_i].ex);
	snprintf(want, sizeof(want), "publishing: %s", amqp_error_string2(status_cases[_i].status));
	ck_assert_str_eq(err.msg, want);

	pb_err_clear(&err);
	r.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION;
	r.library_error = status_cases[_i].status;
	ck_assert_int_eq(pb_amqp_reply_err(r, "publishing", &err), -1);
	ck_assert_int_eq(err.code, status_cases[_i].ex);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_ok_is_not_an_error)
{
	struct pb_err err = PB_ERR_INIT;
	amqp_rpc_reply_t r = { 0 };

	r.reply_type = AMQP_RESPONSE_NORMAL;
	ck_assert_int_eq(pb_amqp_reply_err(r, "x", &err), 0);
	ck_assert_int_eq(pb_amqp_not_found(r), 0);
	ck_assert_int_eq(pb_amqp_status_err(AMQP_STATUS_OK, "x", &err), 0);
	ck_assert_int_eq(err.code, 0);
	/* a reply that never came is an error, not a success */
	r.reply_type = AMQP_RESPONSE_NONE;
	ck_assert_int_eq(pb_amqp_reply_err(r, "x", &err), -1);
	ck_assert_int_ne(err.code, 0);
}
END_TEST

/* ---- tables ---- */

START_TEST(test_tables)
{
	amqp_table_entry_t e = pb_table_str("x-queue-type", "quorum");

	ck_assert_int_eq(e.value.kind, AMQP_FIELD_KIND_UTF8);
	ck_assert_uint_eq(e.key.len, strlen("x-queue-type"));
	ck_assert(!memcmp(e.value.value.bytes.bytes, "quorum", 6));
	e = pb_table_int("x-max-length", 100000);
	ck_assert_int_eq(e.value.kind, AMQP_FIELD_KIND_I64);
	ck_assert_int_eq(e.value.value.i64, 100000);
	e = pb_table_bool("x-single-active-consumer", 7);
	ck_assert_int_eq(e.value.kind, AMQP_FIELD_KIND_BOOLEAN);
	ck_assert_int_eq(e.value.value.boolean, 1);
}
END_TEST

/* ---- sessions without a broker ---- */

START_TEST(test_missing_password_file)
{
	const char *urls[] = { "amqp://www-01@127.0.0.1:1/provbus" };
	struct pb_session_opts o = { urls, 1, "/nonexistent/provbus-password", NULL, 0, NULL,
				     "test", 200 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s = pb_session_new(&o);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pb_session_connect(s, &err), -1);
	ck_assert_int_eq(err.code, EX_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/provbus-password"));
	ck_assert(!pb_session_connected(s));
	ck_assert_int_eq(pb_session_fd(s), -1);
	ck_assert_str_eq(pb_session_url(s), "");
	ck_assert_str_eq(pb_session_vhost(s), "provbus");
	pb_session_free(s);
}
END_TEST

/* A password file group or others may read: one warning naming it and
 * its mode; a 0600 one: none. (The connection then fails: port 1.) */
static char *connect_with_password_file(mode_t mode)
{
	char dir[] = "/tmp/pb-session.XXXXXX", pw[64], logp[64], *got;
	const char *urls[] = { "amqp://www-01@127.0.0.1:1/v" };
	struct pb_session_opts o = { urls, 1, pw, NULL, 0, NULL, "test", 200 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s;
	FILE *f;
	long n;
	int saved, fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pw, sizeof(pw), "%s/password", dir);
	snprintf(logp, sizeof(logp), "%s/log", dir);
	ck_assert_ptr_nonnull(f = fopen(pw, "w"));
	fputs("secret\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(pw, mode), 0);
	fflush(stderr);
	saved = dup(2);
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 2);
	close(fd);
	pb_log_init("test", 0);
	s = pb_session_new(&o);
	ck_assert_int_eq(pb_session_connect(s, &err), -1);
	ck_assert_int_eq(pb_session_connect(s, &err), -1);	/* warned once */
	pb_session_free(s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ck_assert_ptr_nonnull(f = fopen(logp, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	got = calloc(1, (size_t)n + 1);
	ck_assert_int_eq(fread(got, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(pw);
	unlink(logp);
	rmdir(dir);
	return got;
}

START_TEST(test_password_file_mode_warning)
{
	char *log = connect_with_password_file(0640);
	const char *w = strstr(log, "accessible by group or others (mode 640)");

	ck_assert_msg(w != NULL, "no warning for a group-readable file: %s", log);
	ck_assert_msg(strstr(w + 1, "accessible by group") == NULL, "warned twice: %s", log);
	ck_assert_ptr_null(strstr(log, "secret"));
	free(log);
	log = connect_with_password_file(0604);
	ck_assert_msg(strstr(log, "(mode 604)") != NULL, "no warning for a world-readable file: %s", log);
	free(log);
	log = connect_with_password_file(0600);
	ck_assert_msg(strstr(log, "accessible") == NULL, "a 0600 file warned about: %s", log);
	free(log);
}
END_TEST

START_TEST(test_missing_tls_ca)
{
	const char *urls[] = { "amqps://u:secret@127.0.0.1:1/v" };
	struct pb_tls tls = { "/nonexistent/ca.pem", NULL, NULL, 1 };
	struct pb_session_opts o = { urls, 1, NULL, &tls, 0, NULL, "test", 200 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s = pb_session_new(&o);

	ck_assert_int_eq(pb_session_connect(s, &err), -1);
	ck_assert_int_eq(err.code, EX_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/ca.pem"));
	ck_assert_ptr_null(strstr(err.msg, "secret"));
	pb_session_free(s);
}
END_TEST

START_TEST(test_unreachable_lists_each_url)
{
	/* port 1 on loopback: closed */
	const char *urls[] = { "amqp://u:secret1@127.0.0.1:1/v", "amqp://u:secret2@127.0.0.1:1/w" };
	struct pb_session_opts o = { urls, 2, NULL, NULL, 0, "/override", "test", 500 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s = pb_session_new(&o);

	ck_assert_str_eq(pb_session_vhost(s), "/override");
	ck_assert_int_eq(pb_session_connect(s, &err), -1);
	ck_assert_int_eq(err.code, EX_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.msg, "amqp://u@127.0.0.1:1/v: "));
	ck_assert_ptr_nonnull(strstr(err.msg, "amqp://u@127.0.0.1:1/w: "));
	ck_assert_ptr_null(strstr(err.msg, "secret"));
	pb_session_close(s);	/* safe when not connected */
	pb_session_abort(s);
	pb_session_free(s);
}
END_TEST

START_TEST(test_user_without_password)
{
	const char *urls[] = { "amqp://www-01@127.0.0.1:1/v" };
	struct pb_session_opts o = { urls, 1, NULL, NULL, 0, NULL, "test", 200 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s = pb_session_new(&o);

	ck_assert_int_eq(pb_session_connect(s, &err), -1);
	ck_assert_int_eq(err.code, EX_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "password_file"));
	pb_session_free(s);
}
END_TEST

/* ---- a connection that reached itself ---- */

static int loopback_socket(struct sockaddr_in *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)a, &l), 0);
	return fd;
}

START_TEST(test_self_connected)
{
	struct sockaddr_in a, b;
	int self = loopback_socket(&a), lis = loopback_socket(&b), cli, acc, p[2];

	/* bound to port P, connected to 127.0.0.1:P: TCP's simultaneous
	 * open makes it its own peer, as an unlucky ephemeral port does */
	ck_assert_int_eq(connect(self, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(pb_sock_self_connected(self), 1);
	/* an ordinary connection, both ends */
	ck_assert_int_eq(listen(lis, 1), 0);
	cli = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cli, (struct sockaddr *)&b, sizeof(b)), 0);
	acc = accept(lis, NULL, NULL);
	ck_assert_int_ge(acc, 0);
	ck_assert_int_eq(pb_sock_self_connected(cli), 0);
	ck_assert_int_eq(pb_sock_self_connected(acc), 0);
	/* a listener, a pipe, no descriptor */
	ck_assert_int_eq(pb_sock_self_connected(lis), 0);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pb_sock_self_connected(p[0]), 0);
	ck_assert_int_eq(pb_sock_self_connected(-1), 0);
	close(p[0]);
	close(p[1]);
	close(acc);
	close(cli);
	close(lis);
	close(self);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("offline");

	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_redact, 0, sizeof(redact_cases) / sizeof(redact_cases[0]));
	tcase_add_test(tc, test_redact_truncates);
	tcase_add_test(tc, test_backoff_bounds);
	tcase_add_test(tc, test_backoff_jitters);
	tcase_add_test(tc, test_backoff_recovering);
	tcase_add_test(tc, test_backoff_flap);
	tcase_add_loop_test(tc, test_reply_server_exception, 0,
			    sizeof(close_cases) / sizeof(close_cases[0]));
	tcase_add_loop_test(tc, test_status, 0, sizeof(status_cases) / sizeof(status_cases[0]));
	tcase_add_test(tc, test_ok_is_not_an_error);
	tcase_add_test(tc, test_tables);
	tcase_add_test(tc, test_missing_password_file);
	tcase_add_test(tc, test_password_file_mode_warning);
	tcase_add_test(tc, test_missing_tls_ca);
	tcase_add_test(tc, test_unreachable_lists_each_url);
	tcase_add_test(tc, test_user_without_password);
	tcase_add_test(tc, test_self_connected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(session_suite());
}
