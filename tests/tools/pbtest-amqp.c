/* pbtest-amqp — a small AMQP client for the integration tests.
 *
 *   pbtest-amqp URL publish EXCHANGE ROUTING_KEY [--body STR | --body-file F |
 *       --body-stdin] [--content-type T] [--message-id ID] [--type T]
 *       [--app-id A] [--user-id U] [--timestamp S] [--header K=V]... [--persistent]
 *       [--mandatory] [--count N] [--confirm] [--timeout-ms T]
 *   pbtest-amqp URL publish-lines EXCHANGE [--confirm] [--persistent]
 *       [--content-type T] [--timeout-ms T]
 *       (stdin: "ROUTING_KEY<TAB>BODY" per line)
 *   pbtest-amqp URL queue QUEUE [--bind EXCHANGE:PATTERN]... [--durable]
 *       [--type classic|quorum|stream] [--dlx EXCHANGE] [--max-length N]
 *   pbtest-amqp URL get QUEUE [--count N] [--timeout-ms T] [--no-ack]
 *   pbtest-amqp URL stream QUEUE [--offset first|last|next|TIMESTAMP_MS]
 *       [--count N] [--timeout-ms T]
 *   pbtest-amqp URL[,URL...] session [--password-file F] [--vhost V]
 *       [--check-exchange EX]... [--connect-timeout-ms T] [--reopen-test]
 *       (connects through lib/session.c: prints "connected URL VHOST" with
 *       the redacted URL, checks each exchange; exits with the pb_err code
 *       and prints its message)
 *   pbtest-amqp URL count QUEUE | purge QUEUE | delete-queue QUEUE |
 *       exchange-exists EXCHANGE | delete-exchange EXCHANGE |
 *       exchange EXCHANGE [--type T] [--alternate AE]
 *
 * get/stream print one JSON object per message. get --no-ack leaves the
 * messages in the queue (they are consumed with manual acks and never
 * acked, so the broker requeues them when the channel closes).
 * Exit: 0 ok, 1 failure (a nack, a returned message, a broker error),
 * 64 usage, 69 broker unreachable, 77 access refused (403),
 * exchange-exists: 1 when missing. Raw rabbitmq-c on purpose: it tests
 * the broker independently of lib/session.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>

#include "log.h"
#include "session.h"

#define CH 1
#define MAX_HEADERS 32
#define CONFIRM_WINDOW 1000

static const char *prog = "pbtest-amqp";

struct opts {
	const char *body, *body_file, *content_type, *message_id, *type, *app_id, *user_id;
	int body_stdin, persistent, mandatory, confirm, no_ack, durable;
	long count;
	long timeout_ms;
	long long timestamp;
	const char *qtype, *offset, *dlx, *alternate;
	long max_length;
	const char *binds[64];
	const char *password_file, *vhost;
	const char *check_ex[16];
	int n_check_ex;
	long connect_timeout_ms;
	int reopen_test;
	int n_binds;
	const char *hdr[MAX_HEADERS];
	int n_hdr;
};

static amqp_connection_state_t conn;
static amqp_bytes_t body_buf;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static int code_exit(int reply_code)
{
	return reply_code == 403 ? EX_NOPERM : 1;
}

/* Dies with the broker's reply code and text from a close method. */
static void die_method(const amqp_method_t *m, const char *what)
{
	if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
		const amqp_connection_close_t *c = m->decoded;
		die(code_exit(c->reply_code), "%s: %u %.*s", what, c->reply_code,
		    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
	}
	if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
		const amqp_channel_close_t *c = m->decoded;
		die(code_exit(c->reply_code), "%s: %u %.*s", what, c->reply_code,
		    (int)c->reply_text.len, (const char *)c->reply_text.bytes);
	}
	die(1, "%s: unexpected method 0x%08x from the broker", what, m->id);
}

static void check_reply(amqp_rpc_reply_t r, const char *what)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return;
	case AMQP_RESPONSE_NONE:
		die(1, "%s: no reply from the broker", what);
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		die(r.library_error == AMQP_STATUS_SOCKET_ERROR ||
		    r.library_error == AMQP_STATUS_CONNECTION_CLOSED ? EX_UNAVAILABLE : 1,
		    "%s: %s", what, amqp_error_string2(r.library_error));
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		die_method(&r.reply, what);
	}
	die(1, "%s: unknown reply type", what);
}

static void check_status(int status, const char *what)
{
	if (status != AMQP_STATUS_OK)
		die(1, "%s: %s", what, amqp_error_string2(status));
}

static void connect_url(const char *url)
{
	struct amqp_connection_info ci;
	struct timeval tv = { 5, 0 };
	amqp_socket_t *sock;
	char *copy = strdup(url);
	int status;

	if (!copy)
		die(1, "out of memory");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
		die(EX_USAGE, "bad URL (amqp://USER:PASS@HOST:PORT/VHOST)");
	conn = amqp_new_connection();
	if (ci.ssl) {
		const char *ca = getenv("PBTEST_CACERT");
		sock = amqp_ssl_socket_new(conn);
		if (sock && ca) {
			if (amqp_ssl_socket_set_cacert(sock, ca) != AMQP_STATUS_OK)
				die(1, "%s: cannot load CA certificate", ca);
		} else if (sock) {
			amqp_ssl_socket_set_verify_peer(sock, 0);
			amqp_ssl_socket_set_verify_hostname(sock, 0);
		}
	} else {
		sock = amqp_tcp_socket_new(conn);
	}
	if (!sock)
		die(1, "cannot create socket");
	status = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (status != AMQP_STATUS_OK)
		die(EX_UNAVAILABLE, "%s:%d: %s", ci.host, ci.port, amqp_error_string2(status));
	amqp_rpc_reply_t r = amqp_login(conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
					ci.user, ci.password);
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_SOCKET_CLOSED)
		die(EX_NOPERM, "login as %s to vhost %s refused", ci.user, ci.vhost);
	check_reply(r, "login");
	amqp_channel_open(conn, CH);
	check_reply(amqp_get_rpc_reply(conn), "opening channel");
	free(copy);
}

static void disconnect(void)
{
	amqp_channel_close(conn, CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

/* ---- JSON output ---- */

static json_t *field_json(const amqp_field_value_t *v);

static json_t *bytes_json(amqp_bytes_t b)
{
	json_t *s = json_stringn(b.bytes ? b.bytes : "", b.len);

	return s ? s : json_string("<binary>");
}

static json_t *table_json(const amqp_table_t *t)
{
	json_t *o = json_object();

	for (int i = 0; i < t->num_entries; i++) {
		char key[256];
		size_t n = t->entries[i].key.len < sizeof(key) - 1 ? t->entries[i].key.len : sizeof(key) - 1;
		memcpy(key, t->entries[i].key.bytes, n);
		key[n] = '\0';
		json_object_set_new(o, key, field_json(&t->entries[i].value));
	}
	return o;
}

static json_t *field_json(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_BOOLEAN: return json_boolean(v->value.boolean);
	case AMQP_FIELD_KIND_I8: return json_integer(v->value.i8);
	case AMQP_FIELD_KIND_U8: return json_integer(v->value.u8);
	case AMQP_FIELD_KIND_I16: return json_integer(v->value.i16);
	case AMQP_FIELD_KIND_U16: return json_integer(v->value.u16);
	case AMQP_FIELD_KIND_I32: return json_integer(v->value.i32);
	case AMQP_FIELD_KIND_U32: return json_integer(v->value.u32);
	case AMQP_FIELD_KIND_I64: return json_integer(v->value.i64);
	case AMQP_FIELD_KIND_U64: return json_integer((json_int_t)v->value.u64);
	case AMQP_FIELD_KIND_TIMESTAMP: return json_integer((json_int_t)v->value.u64);
	case AMQP_FIELD_KIND_F32: return json_real(v->value.f32);
	case AMQP_FIELD_KIND_F64: return json_real(v->value.f64);
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES: return bytes_json(v->value.bytes);
	case AMQP_FIELD_KIND_TABLE: return table_json(&v->value.table);
	case AMQP_FIELD_KIND_ARRAY: {
		json_t *a = json_array();
		for (int i = 0; i < v->value.array.num_entries; i++)
			json_array_append_new(a, field_json(&v->value.array.entries[i]));
		return a;
	}
	default: return json_null();
	}
}

static void print_message(amqp_bytes_t exchange, amqp_bytes_t rkey, int redelivered,
			  uint64_t tag, const amqp_message_t *msg)
{
	const amqp_basic_properties_t *p = &msg->properties;
	json_t *o = json_object(), *props = json_object();
	json_t *body;
	char *text;

	json_object_set_new(o, "exchange", bytes_json(exchange));
	json_object_set_new(o, "routing_key", bytes_json(rkey));
	json_object_set_new(o, "redelivered", json_boolean(redelivered));
	json_object_set_new(o, "delivery_tag", json_integer((json_int_t)tag));
	if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		json_object_set_new(props, "content_type", bytes_json(p->content_type));
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		json_object_set_new(props, "delivery_mode", json_integer(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		json_object_set_new(props, "message_id", bytes_json(p->message_id));
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		json_object_set_new(props, "timestamp", json_integer((json_int_t)p->timestamp));
	if (p->_flags & AMQP_BASIC_TYPE_FLAG)
		json_object_set_new(props, "type", bytes_json(p->type));
	if (p->_flags & AMQP_BASIC_APP_ID_FLAG)
		json_object_set_new(props, "app_id", bytes_json(p->app_id));
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
		json_object_set_new(props, "headers", table_json(&p->headers));
	json_object_set_new(o, "properties", props);
	body = json_stringn(msg->body.bytes ? msg->body.bytes : "", msg->body.len);
	if (body) {
		json_object_set_new(o, "body", body);
	} else {
		char *hex = malloc(msg->body.len * 2 + 1);
		const unsigned char *b = msg->body.bytes;
		for (size_t i = 0; i < msg->body.len; i++)
			sprintf(hex + 2 * i, "%02x", b[i]);
		hex[msg->body.len * 2] = '\0';
		json_object_set_new(o, "body_hex", json_string(hex));
		free(hex);
	}
	text = json_dumps(o, JSON_COMPACT);
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(o);
}

/* ---- publishing ---- */

static void read_body(const struct opts *o)
{
	FILE *f = NULL;

	if (o->body) {
		body_buf = amqp_cstring_bytes(o->body);
		return;
	}
	if (o->body_file) {
		f = fopen(o->body_file, "rb");
		if (!f)
			die(EX_NOINPUT, "%s: %s", o->body_file, strerror(errno));
	} else if (o->body_stdin) {
		f = stdin;
	} else {
		body_buf = amqp_cstring_bytes("");
		return;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (f != stdin)
		fclose(f);
	body_buf.bytes = buf;
	body_buf.len = len;
}

static amqp_table_entry_t hdr_entries[MAX_HEADERS];

static void set_props(amqp_basic_properties_t *p, const struct opts *o)
{
	memset(p, 0, sizeof(*p));
	if (o->content_type) {
		p->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		p->content_type = amqp_cstring_bytes(o->content_type);
	}
	if (o->persistent) {
		p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
		p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
	}
	if (o->message_id) {
		p->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p->message_id = amqp_cstring_bytes(o->message_id);
	}
	if (o->type) {
		p->_flags |= AMQP_BASIC_TYPE_FLAG;
		p->type = amqp_cstring_bytes(o->type);
	}
	if (o->user_id) {
		p->_flags |= AMQP_BASIC_USER_ID_FLAG;
		p->user_id = amqp_cstring_bytes(o->user_id);
	}
	if (o->app_id) {
		p->_flags |= AMQP_BASIC_APP_ID_FLAG;
		p->app_id = amqp_cstring_bytes(o->app_id);
	}
	if (o->timestamp >= 0) {
		p->_flags |= AMQP_BASIC_TIMESTAMP_FLAG;
		p->timestamp = (uint64_t)o->timestamp;
	}
	if (o->n_hdr) {
		for (int i = 0; i < o->n_hdr; i++) {
			const char *eq = strchr(o->hdr[i], '=');
			hdr_entries[i].key.bytes = (void *)o->hdr[i];
			hdr_entries[i].key.len = (size_t)(eq - o->hdr[i]);
			hdr_entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
			hdr_entries[i].value.value.bytes = amqp_cstring_bytes(eq + 1);
		}
		p->_flags |= AMQP_BASIC_HEADERS_FLAG;
		p->headers.num_entries = o->n_hdr;
		p->headers.entries = hdr_entries;
	}
}

struct confirms {
	uint64_t published, acked;	/* acked: every tag <= acked is settled */
	long nacked, returned;
};

/* Reads one frame (waiting up to timeout_ms) and accounts for acks,
 * nacks, returns; dies on a channel or connection close. Returns 0 on
 * timeout, 1 when a frame was handled. */
static int handle_frame(struct confirms *c, long timeout_ms)
{
	amqp_frame_t f;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int st = amqp_simple_wait_frame_noblock(conn, &f, &tv);

	if (st == AMQP_STATUS_TIMEOUT)
		return 0;
	check_status(st, "waiting for confirms");
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 1;
	switch (f.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = f.payload.method.decoded;
		/* RabbitMQ confirms in publishing order on one channel */
		c->acked = a->delivery_tag > c->acked ? a->delivery_tag : c->acked;
		break;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = f.payload.method.decoded;
		fprintf(stderr, "%s: message %llu nacked by the broker\n", prog,
			(unsigned long long)n->delivery_tag);
		c->nacked++;
		c->acked = n->delivery_tag > c->acked ? n->delivery_tag : c->acked;
		break;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_basic_return_t *r = f.payload.method.decoded;
		amqp_message_t m;
		fprintf(stderr, "%s: message returned: %u %.*s (routing key %.*s)\n", prog,
			r->reply_code, (int)r->reply_text.len, (char *)r->reply_text.bytes,
			(int)r->routing_key.len, (char *)r->routing_key.bytes);
		c->returned++;
		check_reply(amqp_read_message(conn, f.channel, &m, 0), "reading returned message");
		amqp_destroy_message(&m);
		break;
	}
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		die_method(&f.payload.method, "publishing");
	default:
		break;
	}
	return 1;
}

static void wait_confirms(struct confirms *c, uint64_t upto, long timeout_ms)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (c->acked < upto) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
					  (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || !handle_frame(c, left))
			die(1, "%llu of %llu messages unconfirmed after %ld ms",
			    (unsigned long long)(upto - c->acked), (unsigned long long)upto, timeout_ms);
	}
}

/* Without confirms a refused publish is only seen as a channel close that
 * arrives later: a synchronous round trip makes sure we see it. */
static void sync_channel(const char *what)
{
	amqp_basic_qos(conn, CH, 0, 0, 0);
	check_reply(amqp_get_rpc_reply(conn), what);
}

static void publish_one(const char *exchange, const char *rkey, amqp_bytes_t body,
			const amqp_basic_properties_t *p, int mandatory)
{
	int st = amqp_basic_publish(conn, CH, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rkey),
				    mandatory, 0, p, body);
	check_status(st, "publishing");
}

static int cmd_publish(const char *exchange, const char *rkey, const struct opts *o)
{
	amqp_basic_properties_t p;
	struct confirms c = { 0 };

	read_body(o);
	set_props(&p, o);
	if (o->confirm) {
		amqp_confirm_select(conn, CH);
		check_reply(amqp_get_rpc_reply(conn), "confirm.select");
	}
	for (long i = 0; i < o->count; i++) {
		publish_one(exchange, rkey, body_buf, &p, o->mandatory);
		c.published++;
		if (o->confirm && c.published - c.acked >= CONFIRM_WINDOW)
			wait_confirms(&c, c.published - CONFIRM_WINDOW / 2, o->timeout_ms);
	}
	if (o->confirm)
		wait_confirms(&c, c.published, o->timeout_ms);
	else
		sync_channel("publishing");
	/* a return precedes its ack, so it has been seen by now */
	if (c.nacked || c.returned)
		die(1, "%ld nacked, %ld returned of %llu", c.nacked, c.returned,
		    (unsigned long long)c.published);
	if (o->body_file || o->body_stdin)
		free(body_buf.bytes);
	return 0;
}

static int cmd_publish_lines(const char *exchange, const struct opts *o)
{
	amqp_basic_properties_t p;
	struct confirms c = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	set_props(&p, o);
	if (o->confirm) {
		amqp_confirm_select(conn, CH);
		check_reply(amqp_get_rpc_reply(conn), "confirm.select");
	}
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		char *tab = strchr(line, '\t');
		if (!tab)
			die(EX_DATAERR, "stdin: line without a tab: %s", line);
		*tab = '\0';
		amqp_bytes_t body = { (size_t)(n - (tab + 1 - line)), tab + 1 };
		publish_one(exchange, line, body, &p, o->mandatory);
		c.published++;
		if (o->confirm && c.published - c.acked >= CONFIRM_WINDOW)
			wait_confirms(&c, c.published - CONFIRM_WINDOW / 2, o->timeout_ms);
	}
	free(line);
	if (o->confirm)
		wait_confirms(&c, c.published, o->timeout_ms);
	else
		sync_channel("publishing");
	if (c.nacked || c.returned)
		die(1, "%ld nacked, %ld returned of %llu", c.nacked, c.returned,
		    (unsigned long long)c.published);
	fprintf(stderr, "%s: published %llu\n", prog, (unsigned long long)c.published);
	return 0;
}

/* ---- queues ---- */

static int cmd_queue(const char *queue, const struct opts *o)
{
	amqp_table_entry_t e[4];
	amqp_table_t args = { 0, e };
	int durable = o->durable;

	if (o->qtype) {
		if (strcmp(o->qtype, "classic") && strcmp(o->qtype, "quorum") && strcmp(o->qtype, "stream"))
			die(EX_USAGE, "--type: classic, quorum or stream");
		e[args.num_entries].key = amqp_cstring_bytes("x-queue-type");
		e[args.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
		e[args.num_entries++].value.value.bytes = amqp_cstring_bytes(o->qtype);
		if (strcmp(o->qtype, "classic"))
			durable = 1;
	}
	if (o->dlx) {
		e[args.num_entries].key = amqp_cstring_bytes("x-dead-letter-exchange");
		e[args.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
		e[args.num_entries++].value.value.bytes = amqp_cstring_bytes(o->dlx);
	}
	if (o->max_length >= 0) {
		e[args.num_entries].key = amqp_cstring_bytes("x-max-length");
		e[args.num_entries].value.kind = AMQP_FIELD_KIND_I64;
		e[args.num_entries++].value.value.i64 = o->max_length;
	}
	amqp_queue_declare(conn, CH, amqp_cstring_bytes(queue), 0, durable, 0, 0, args);
	check_reply(amqp_get_rpc_reply(conn), "declaring queue");
	for (int i = 0; i < o->n_binds; i++) {
		char *spec = strdup(o->binds[i]);
		char *colon = strchr(spec, ':');
		if (!colon)
			die(EX_USAGE, "--bind EXCHANGE:PATTERN");
		*colon = '\0';
		amqp_queue_bind(conn, CH, amqp_cstring_bytes(queue), amqp_cstring_bytes(spec),
				amqp_cstring_bytes(colon + 1), amqp_empty_table);
		check_reply(amqp_get_rpc_reply(conn), "binding queue");
		free(spec);
	}
	return 0;
}

static int cmd_exchange(const char *exchange, const struct opts *o)
{
	amqp_table_entry_t e[1];
	amqp_table_t args = { 0, e };

	if (o->alternate) {
		e[0].key = amqp_cstring_bytes("alternate-exchange");
		e[0].value.kind = AMQP_FIELD_KIND_UTF8;
		e[0].value.value.bytes = amqp_cstring_bytes(o->alternate);
		args.num_entries = 1;
	}
	amqp_exchange_declare(conn, CH, amqp_cstring_bytes(exchange),
			      amqp_cstring_bytes(o->qtype ? o->qtype : "topic"), 0, 1, 0, 0, args);
	check_reply(amqp_get_rpc_reply(conn), "declaring exchange");
	return 0;
}

/* Consumes up to count messages, printing each; stops after timeout_ms
 * without a message. ack: ack each message after printing it. */
static void consume_loop(const struct opts *o, int ack)
{
	long got = 0;

	while (o->count <= 0 || got < o->count) {
		amqp_envelope_t env;
		struct timeval tv = { o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000 };
		amqp_maybe_release_buffers(conn);
		amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			break;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
			amqp_frame_t f;
			check_status(amqp_simple_wait_frame(conn, &f), "consuming");
			if (f.frame_type == AMQP_FRAME_METHOD &&
			    (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
			     f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
				die_method(&f.payload.method, "consuming");
			if (f.frame_type == AMQP_FRAME_METHOD &&
			    f.payload.method.id == AMQP_BASIC_CANCEL_METHOD)
				die(1, "consuming: the broker cancelled the consumer");
			continue;
		}
		check_reply(r, "consuming");
		print_message(env.exchange, env.routing_key, env.redelivered, env.delivery_tag,
			      &env.message);
		if (ack)
			check_status(amqp_basic_ack(conn, CH, env.delivery_tag, 0), "acking");
		amqp_destroy_envelope(&env);
		got++;
	}
}

static int cmd_get(const char *queue, const struct opts *o)
{
	uint16_t prefetch = o->count > 0 && o->count < 1000 ? (uint16_t)o->count : 1000;

	amqp_basic_qos(conn, CH, 0, prefetch, 0);
	check_reply(amqp_get_rpc_reply(conn), "basic.qos");
	amqp_basic_consume(conn, CH, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
			   amqp_empty_table);
	check_reply(amqp_get_rpc_reply(conn), "consuming");
	consume_loop(o, !o->no_ack);
	return 0;
}

static int cmd_stream(const char *queue, const struct opts *o)
{
	amqp_table_entry_t e[1];
	amqp_table_t args = { 1, e };
	const char *off = o->offset ? o->offset : "first";

	e[0].key = amqp_cstring_bytes("x-stream-offset");
	if (!strcmp(off, "first") || !strcmp(off, "last") || !strcmp(off, "next")) {
		e[0].value.kind = AMQP_FIELD_KIND_UTF8;
		e[0].value.value.bytes = amqp_cstring_bytes(off);
	} else {
		char *end;
		long long ms = strtoll(off, &end, 10);
		if (*end || ms < 0)
			die(EX_USAGE, "--offset: first, last, next or a time in ms since the epoch");
		e[0].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
		e[0].value.value.u64 = (uint64_t)(ms / 1000);
	}
	amqp_basic_qos(conn, CH, 0, 100, 0);
	check_reply(amqp_get_rpc_reply(conn), "basic.qos");
	amqp_basic_consume(conn, CH, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, args);
	check_reply(amqp_get_rpc_reply(conn), "consuming stream");
	consume_loop(o, 1);
	return 0;
}

static int cmd_count(const char *queue)
{
	amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, CH, amqp_cstring_bytes(queue), 1, 0,
							 0, 0, amqp_empty_table);
	check_reply(amqp_get_rpc_reply(conn), "queue");
	printf("%u\n", ok->message_count);
	return 0;
}

static int cmd_purge(const char *queue)
{
	amqp_queue_purge(conn, CH, amqp_cstring_bytes(queue));
	check_reply(amqp_get_rpc_reply(conn), "purging queue");
	return 0;
}

static int cmd_delete_queue(const char *queue)
{
	amqp_queue_delete(conn, CH, amqp_cstring_bytes(queue), 0, 0);
	check_reply(amqp_get_rpc_reply(conn), "deleting queue");
	return 0;
}

static int cmd_delete_exchange(const char *exchange)
{
	amqp_exchange_delete(conn, CH, amqp_cstring_bytes(exchange), 0);
	check_reply(amqp_get_rpc_reply(conn), "deleting exchange");
	return 0;
}

static int cmd_exchange_exists(const char *exchange)
{
	amqp_exchange_declare(conn, CH, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"),
			      1, 0, 0, 0, amqp_empty_table);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code == 404) {
		amqp_channel_close_ok_t ok = { 0 };
		amqp_send_method(conn, CH, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
		exit(1);
	}
	check_reply(r, "exchange");
	return 0;
}

/* Exercises pb_session_reopen_channel / pb_session_closed_by_broker in
 * the three states a channel can be in after a refused publish: the
 * broker's close read by us, still unread, or no close at all. Each round
 * ends with a passive declare and a check that no stray frame is left. */
static int reopen_rounds(struct pb_session *s, struct pb_err *err)
{
	static const char *const mode_name[] = { "close read by the caller", "close unread",
						 "channel open" };

	for (int mode = 0; mode < 3; mode++) {
		amqp_connection_state_t c = pb_session_conn(s);
		amqp_frame_t f;
		struct timeval tv = { 0, 300000 };
		int st;

		if (mode != 2)
			amqp_basic_publish(c, PB_CHANNEL, amqp_cstring_bytes("pbtest.no-such-exchange"),
					   amqp_cstring_bytes("k"), 0, 0, NULL, amqp_cstring_bytes("x"));
		if (mode == 0) {
			if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD)
				return pb_err_set(err, 1, "reopen (%s): no channel.close", mode_name[mode]);
			pb_session_closed_by_broker(s, &f.payload.method, "publishing", err);
			if (err->code != EX_CONFIG || !pb_session_connected(s))
				return pb_err_set(err, 1, "reopen (%s): %s", mode_name[mode], err->msg);
			pb_err_clear(err);
		} else if (pb_session_reopen_channel(s, err)) {
			pb_err_prefix(err, "reopen (%s)", mode_name[mode]);
			return -1;
		}
		if (pb_session_check_exchange(s, "amq.topic", err)) {
			pb_err_prefix(err, "reopen (%s)", mode_name[mode]);
			return -1;
		}
		st = amqp_simple_wait_frame_noblock(pb_session_conn(s), &f, &tv);
		if (st != AMQP_STATUS_TIMEOUT)
			return pb_err_set(err, 1, "reopen (%s): stray frame (status %d, method 0x%08x)",
					  mode_name[mode], st, f.payload.method.id);
		printf("reopen ok: %s\n", mode_name[mode]);
	}
	return 0;
}

/* Connects through lib/session.c (failover, password file, redaction). */
static int cmd_session(const char *urls, const struct opts *o)
{
	char *list = strdup(urls), *save = NULL;
	const char *u[16];
	struct pb_session_opts so = { 0 };
	struct pb_err err = PB_ERR_INIT;
	struct pb_session *s;
	int rc = 0;

	for (char *t = strtok_r(list, ",", &save); t && so.n_urls < 16; t = strtok_r(NULL, ",", &save))
		u[so.n_urls++] = t;
	so.urls = u;
	so.password_file = o->password_file;
	so.vhost_override = o->vhost;
	so.connection_name = "pbtest-amqp";
	so.heartbeat_s = 10;
	so.connect_timeout_ms = (int)o->connect_timeout_ms;
	pb_log_init(prog, 1);
	s = pb_session_new(&so);
	if (pb_session_connect(s, &err)) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		rc = err.code;
		goto out;
	}
	printf("connected %s %s\n", pb_session_url(s), pb_session_vhost(s));
	for (int i = 0; i < o->n_check_ex; i++) {
		if (pb_session_check_exchange(s, o->check_ex[i], &err)) {
			fprintf(stderr, "%s: %s\n", prog, err.msg);
			rc = err.code;
		} else {
			printf("exchange %s exists\n", o->check_ex[i]);
		}
	}
	if (o->reopen_test && reopen_rounds(s, &err)) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		rc = err.code;
		goto out;
	}
	if (pb_session_connected(s))	/* the channel works after a 404 */
		amqp_basic_qos(pb_session_conn(s), PB_CHANNEL, 0, 1, 0);
	if (pb_session_connected(s) && pb_amqp_reply_err(amqp_get_rpc_reply(pb_session_conn(s)),
							  "using the channel", &err)) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		rc = err.code;
	}
out:
	pb_session_free(s);
	free(list);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s URL publish EXCHANGE ROUTING_KEY [--body S|--body-file F|--body-stdin]\n"
		"         [--content-type T] [--message-id ID] [--type T] [--app-id A] [--timestamp S]\n"
		"         [--header K=V]... [--persistent] [--mandatory] [--count N] [--confirm]\n"
		"       %s URL publish-lines EXCHANGE [--confirm]   (stdin: KEY<TAB>BODY lines)\n"
		"       %s URL queue QUEUE [--bind EXCHANGE:PATTERN]... [--durable]\n"
		"         [--type classic|quorum|stream] [--dlx EX] [--max-length N]\n"
		"       %s URL get QUEUE [--count N] [--timeout-ms T] [--no-ack]\n"
		"       %s URL stream QUEUE [--offset first|last|next|TIMESTAMP_MS] [--count N] [--timeout-ms T]\n"
		"       %s URL[,URL...] session [--password-file F] [--vhost V] [--check-exchange EX]...\n"
		"       %s URL count|purge|delete-queue QUEUE\n"
		"       %s URL exchange-exists|delete-exchange EXCHANGE\n"
		"       %s URL exchange EXCHANGE [--type T] [--alternate AE]\n",
		prog, prog, prog, prog, prog, prog, prog, prog, prog);
	exit(EX_USAGE);
}

static long num_arg(const char *opt, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (!*v || *end)
		die(EX_USAGE, "%s: not a number: %s", opt, v);
	return n;
}

int main(int argc, char **argv)
{
	struct opts o = { .count = 1, .timeout_ms = 2000, .timestamp = -1, .max_length = -1,
			  .connect_timeout_ms = 2000 };
	const char *pos[4];
	int npos = 0, rc = 0;
	int timeout_set = 0, count_set = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (die(EX_USAGE, "%s needs a value", a), ""))
		if (!strcmp(a, "--body")) o.body = NEXT();
		else if (!strcmp(a, "--body-file")) o.body_file = NEXT();
		else if (!strcmp(a, "--body-stdin")) o.body_stdin = 1;
		else if (!strcmp(a, "--content-type")) o.content_type = NEXT();
		else if (!strcmp(a, "--message-id")) o.message_id = NEXT();
		else if (!strcmp(a, "--type")) o.type = o.qtype = NEXT();
		else if (!strcmp(a, "--app-id")) o.app_id = NEXT();
		else if (!strcmp(a, "--user-id")) o.user_id = NEXT();
		else if (!strcmp(a, "--timestamp")) o.timestamp = num_arg(a, NEXT());
		else if (!strcmp(a, "--header")) {
			const char *h = NEXT();
			if (!strchr(h, '=') || o.n_hdr == MAX_HEADERS)
				die(EX_USAGE, "--header K=V");
			o.hdr[o.n_hdr++] = h;
		}
		else if (!strcmp(a, "--persistent")) o.persistent = 1;
		else if (!strcmp(a, "--mandatory")) o.mandatory = 1;
		else if (!strcmp(a, "--count")) { o.count = num_arg(a, NEXT()); count_set = 1; }
		else if (!strcmp(a, "--confirm")) o.confirm = 1;
		else if (!strcmp(a, "--timeout-ms")) { o.timeout_ms = num_arg(a, NEXT()); timeout_set = 1; }
		else if (!strcmp(a, "--no-ack")) o.no_ack = 1;
		else if (!strcmp(a, "--durable")) o.durable = 1;
		else if (!strcmp(a, "--offset")) o.offset = NEXT();
		else if (!strcmp(a, "--dlx")) o.dlx = NEXT();
		else if (!strcmp(a, "--alternate")) o.alternate = NEXT();
		else if (!strcmp(a, "--max-length")) o.max_length = num_arg(a, NEXT());
		else if (!strcmp(a, "--password-file")) o.password_file = NEXT();
		else if (!strcmp(a, "--vhost")) o.vhost = NEXT();
		else if (!strcmp(a, "--reopen-test")) o.reopen_test = 1;
		else if (!strcmp(a, "--connect-timeout-ms")) o.connect_timeout_ms = num_arg(a, NEXT());
		else if (!strcmp(a, "--check-exchange")) {
			if (o.n_check_ex == 16)
				die(EX_USAGE, "too many --check-exchange");
			o.check_ex[o.n_check_ex++] = NEXT();
		}
		else if (!strcmp(a, "--bind")) {
			if (o.n_binds == 64)
				die(EX_USAGE, "too many --bind");
			o.binds[o.n_binds++] = NEXT();
		}
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
		else if (a[0] == '-' && a[1] == '-') die(EX_USAGE, "unknown option %s", a);
		else if (npos < 4) pos[npos++] = a;
		else usage();
#undef NEXT
	}
	if (npos == 2 && !strcmp(pos[1], "session"))
		return cmd_session(pos[0], &o);
	if (npos < 3)
		usage();
	const char *cmd = pos[1];
	if ((!strcmp(cmd, "get") || !strcmp(cmd, "stream")) && !count_set)
		o.count = 0;	/* until the timeout */
	if ((!strcmp(cmd, "publish") || !strcmp(cmd, "publish-lines")) && !timeout_set)
		o.timeout_ms = 30000;
	if (!strcmp(cmd, "publish") && npos != 4)
		usage();
	connect_url(pos[0]);
	if (!strcmp(cmd, "publish")) rc = cmd_publish(pos[2], pos[3], &o);
	else if (!strcmp(cmd, "publish-lines")) rc = cmd_publish_lines(pos[2], &o);
	else if (!strcmp(cmd, "queue")) rc = cmd_queue(pos[2], &o);
	else if (!strcmp(cmd, "exchange")) rc = cmd_exchange(pos[2], &o);
	else if (!strcmp(cmd, "get")) rc = cmd_get(pos[2], &o);
	else if (!strcmp(cmd, "stream")) rc = cmd_stream(pos[2], &o);
	else if (!strcmp(cmd, "count")) rc = cmd_count(pos[2]);
	else if (!strcmp(cmd, "purge")) rc = cmd_purge(pos[2]);
	else if (!strcmp(cmd, "delete-queue")) rc = cmd_delete_queue(pos[2]);
	else if (!strcmp(cmd, "delete-exchange")) rc = cmd_delete_exchange(pos[2]);
	else if (!strcmp(cmd, "exchange-exists")) rc = cmd_exchange_exists(pos[2]);
	else usage();
	disconnect();
	return rc;
}
