/* pbtest-pubflood — many valid provbus events, fast: the publishing side
 * of make bench.
 *
 *   pbtest-pubflood publish URL --count N [EVENT-OPTS] [--window W]
 *                   [--rate R] [--no-confirm] [--timeout-ms T]
 *   pbtest-pubflood outbox-fill DB --count N [EVENT-OPTS]
 *
 * EVENT-OPTS: --federation F (bench) --region R (r1) --keys K1,K2,...
 * (BENCH_KEY) --nodes M (1) --service S (svc) --seq-base B (default: now
 * in microseconds, so later runs always carry higher seqs) --ttl S (0)
 * --value-tag T (a word put in every value, default "v"), --user-id U (the
 * AMQP user_id: the URL's user, which RabbitMQ checks).
 *
 * Event i (0-based) is a `provides` from node "NODEPREFIX-(i mod M)"
 * ("bench-n0" ...; --node-prefix P), service S, key K[i mod #K], seq B+i,
 * value "http://10.A.B.C:P/T" distinct for every i: each one changes the
 * value a consumer would see. Bodies are made by lib/event.c, so they are
 * exactly what provbus-publish sends.
 *
 * publish: the minimal rabbitmq-c publisher with a confirm window — the
 * baseline of the flush bench, and the burst/memory/ingest feeder. Each
 * event goes to exchange provbus.F with routing key R.provides.K,
 * persistent, mandatory, with the properties of docs/protocol.md §4, and at most W
 * (default 1000, like provbus-publish) unconfirmed at a time. --rate R
 * spreads the publishes evenly at R events/s. Prints
 *   published N ms MS rate R nacked X returned Y first_us F last_us L
 * (MS from the connection's start to the last confirm; F and L the wall
 * clock, in microseconds, of the first and the last publish). Exit 0 when every
 * event was confirmed, 1 otherwise, 64 usage, 69 unreachable.
 *
 * outbox-fill: appends N rows to the outbox table of provbus-publish's
 * STATE_DIR/outbox.db (which must exist: let provbus-publish create it),
 * in one transaction, in the columns of publisher/outbox.c, so that a
 * `provbus-publish flush` sends them. Prints "spooled N". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sqlite3.h>

#include "event.h"

#define CH 1
#define MAX_KEYS 64

struct opts {
	const char *federation, *region, *service, *node_prefix, *value_tag, *user_id;
	const char *keys[MAX_KEYS];
	int n_keys;
	long count, nodes, window, timeout_ms;
	double rate;
	int64_t seq_base, ttl;
	int confirm;
};

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
	fprintf(stderr,
		"usage: pbtest-pubflood publish URL --count N [EVENT-OPTS] [--window W] [--rate R]\n"
		"                       [--no-confirm] [--timeout-ms T]\n"
		"       pbtest-pubflood outbox-fill DB --count N [EVENT-OPTS]\n"
		"EVENT-OPTS: --federation F --region R --keys K1,K2 --nodes M --node-prefix P\n"
		"            --service S --seq-base B --ttl S --value-tag T\n");
	exit(EX_USAGE);
}

static void parse_keys(struct opts *o, char *list)
{
	o->n_keys = 0;
	for (char *save = NULL, *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		if (o->n_keys == MAX_KEYS)
			usage();
		o->keys[o->n_keys++] = k;
	}
	if (!o->n_keys)
		usage();
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	*o = (struct opts){ .federation = "bench", .region = "r1", .service = "svc",
			    .node_prefix = "bench-n", .value_tag = "v", .count = -1, .nodes = 1,
			    .window = 1000, .timeout_ms = 30000, .seq_base = real_us(),
			    .confirm = 1 };
	o->keys[0] = "BENCH_KEY";
	o->n_keys = 1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--no-confirm")) {
			o->confirm = 0;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		char *v = argv[++i];
		if (!strcmp(a, "--count"))
			o->count = atol(v);
		else if (!strcmp(a, "--federation"))
			o->federation = v;
		else if (!strcmp(a, "--region"))
			o->region = v;
		else if (!strcmp(a, "--keys"))
			parse_keys(o, v);
		else if (!strcmp(a, "--nodes"))
			o->nodes = atol(v);
		else if (!strcmp(a, "--node-prefix"))
			o->node_prefix = v;
		else if (!strcmp(a, "--service"))
			o->service = v;
		else if (!strcmp(a, "--seq-base"))
			o->seq_base = atoll(v);
		else if (!strcmp(a, "--ttl"))
			o->ttl = atoll(v);
		else if (!strcmp(a, "--value-tag"))
			o->value_tag = v;
		else if (!strcmp(a, "--user-id"))
			o->user_id = v;
		else if (!strcmp(a, "--window"))
			o->window = atol(v);
		else if (!strcmp(a, "--rate"))
			o->rate = atof(v);
		else if (!strcmp(a, "--timeout-ms"))
			o->timeout_ms = atol(v);
		else
			usage();
	}
	if (o->count < 0 || o->nodes <= 0 || o->window <= 0 || o->rate < 0)
		usage();
}

/* Event i as a JSON body (free()) and its routing key; NULL on a bad name. */
static char *make_event(const struct opts *o, long i, struct pb_event *ev, char *rkey,
			size_t rkey_size, size_t *len)
{
	char node[PB_IDENT_MAX + 1], value[256];
	struct pb_err err = PB_ERR_INIT;

	snprintf(node, sizeof(node), "%s%ld", o->node_prefix, i % o->nodes);
	snprintf(value, sizeof(value), "http://10.%ld.%ld.%ld:%ld/%s", (i >> 16) & 255,
		 (i >> 8) & 255, i & 255, 1024 + i % 60000, o->value_tag);
	if (pb_event_init(ev, PB_KIND_PROVIDES, o->federation, o->region, node, o->service,
			  o->keys[i % o->n_keys], value, 0, o->seq_base + i, o->ttl, &err) < 0) {
		fprintf(stderr, "pbtest-pubflood: %s\n", err.msg);
		return NULL;
	}
	pb_event_routing_key(ev, rkey, rkey_size);
	return pb_event_encode(ev, len);
}

/* ---- publish ---- */

struct flood {
	amqp_connection_state_t conn;
	uint64_t published, settled;	/* every tag <= settled is acked or nacked */
	long nacked, returned;
};

static int reply_ok(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "pbtest-pubflood: %s: %s\n", what, amqp_error_string2(r.library_error));
	else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		/* both close methods start with reply_code, reply_text */
		amqp_channel_close_t *c = r.reply.decoded;
		fprintf(stderr, "pbtest-pubflood: %s: %u %.*s\n", what, c->reply_code,
			(int)c->reply_text.len, (char *)c->reply_text.bytes);
	} else {
		fprintf(stderr, "pbtest-pubflood: %s: broker error\n", what);
	}
	return 0;
}

/* Handles one frame, waiting up to timeout_us (0: only what is there).
 * Returns 1 when a frame was handled, 0 on timeout, -1 on error. */
static int read_frame(struct flood *f, int64_t timeout_us)
{
	amqp_frame_t fr;
	struct timeval tv = { timeout_us / 1000000, timeout_us % 1000000 };
	int st = amqp_simple_wait_frame_noblock(f->conn, &fr, &tv);

	if (st == AMQP_STATUS_TIMEOUT)
		return 0;
	if (st != AMQP_STATUS_OK) {
		fprintf(stderr, "pbtest-pubflood: waiting for confirms: %s\n", amqp_error_string2(st));
		return -1;
	}
	if (fr.frame_type != AMQP_FRAME_METHOD)
		return 1;
	switch (fr.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = fr.payload.method.decoded;
		/* RabbitMQ confirms in order on one channel: an ack of tag T
		 * settles T (and all below when multiple) */
		if (a->delivery_tag > f->settled)
			f->settled = a->delivery_tag;
		return 1;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = fr.payload.method.decoded;
		f->nacked++;
		if (n->delivery_tag > f->settled)
			f->settled = n->delivery_tag;
		return 1;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_message_t m;
		f->returned++;
		if (!reply_ok(amqp_read_message(f->conn, fr.channel, &m, 0), "reading a return"))
			return -1;
		amqp_destroy_message(&m);
		return 1;
	}
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
				       .reply = fr.payload.method };
		reply_ok(r, "publishing");
		return -1;
	}
	default:
		return 1;
	}
}

static int connect_url(struct flood *f, const char *url)
{
	struct amqp_connection_info ci;
	amqp_socket_t *sock;
	char *copy = strdup(url);
	int rc = -1;

	amqp_default_connection_info(&ci);
	if (!copy || amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "pbtest-pubflood: bad URL (amqp://USER:PASS@HOST:PORT/VHOST)\n");
		exit(EX_USAGE);
	}
	f->conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(f->conn);
	if (!sock || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK) {
		fprintf(stderr, "pbtest-pubflood: %s:%d: cannot connect\n", ci.host, ci.port);
		exit(EX_UNAVAILABLE);
	}
	if (!reply_ok(amqp_login(f->conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
				 ci.user, ci.password), "login"))
		goto out;
	amqp_channel_open(f->conn, CH);
	if (!reply_ok(amqp_get_rpc_reply(f->conn), "opening channel"))
		goto out;
	rc = 0;
out:
	free(copy);
	return rc;
}

static int cmd_publish(const char *url, const struct opts *o)
{
	struct flood f = { 0 };
	char exchange[PB_IDENT_MAX + 16], rkey[512], ctype[] = "application/json";
	char app_id[64];
	int rc = 1;
	int64_t t0 = mono_us(), t1, last_progress, first_us = 0, last_us = 0;

	snprintf(exchange, sizeof(exchange), "provbus.%s", o->federation);
	snprintf(app_id, sizeof(app_id), "provbus/%s", PB_VERSION);
	if (connect_url(&f, url) < 0)
		goto out;
	if (o->confirm) {
		amqp_confirm_select(f.conn, CH);
		if (!reply_ok(amqp_get_rpc_reply(f.conn), "confirm.select"))
			goto out;
	}
	last_progress = mono_us();
	for (long i = 0; i < o->count; i++) {
		struct pb_event ev;
		amqp_basic_properties_t p = { 0 };
		size_t len;
		char *body = make_event(o, i, &ev, rkey, sizeof(rkey), &len);

		if (!body)
			goto out;
		if (o->rate > 0) {
			int64_t due = t0 + (int64_t)((double)i * 1e6 / o->rate), now;
			while ((now = mono_us()) < due) {
				if (o->confirm && f.settled < f.published) {
					if (read_frame(&f, due - now) < 0) {
						free(body);
						goto out;
					}
				} else {
					usleep((useconds_t)(due - now));
				}
			}
		}
		while (o->confirm && f.published - f.settled >= (uint64_t)o->window) {
			int r = read_frame(&f, 100000);
			if (r < 0 || (r == 0 && mono_us() - last_progress > o->timeout_ms * 1000)) {
				if (r == 0)
					fprintf(stderr, "pbtest-pubflood: no confirm for %ld ms\n",
						o->timeout_ms);
				free(body);
				goto out;
			}
			if (r > 0)
				last_progress = mono_us();
		}
		p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			   AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
		p.content_type = amqp_cstring_bytes(ctype);
		p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
		p.message_id = amqp_cstring_bytes(ev.id);
		p.timestamp = (uint64_t)(real_us() / 1000000);
		p.type = amqp_cstring_bytes("provides");
		p.app_id = amqp_cstring_bytes(app_id);
		if (o->user_id) {
			p._flags |= AMQP_BASIC_USER_ID_FLAG;
			p.user_id = amqp_cstring_bytes(o->user_id);
		}
		int st = amqp_basic_publish(f.conn, CH, amqp_cstring_bytes(exchange),
					    amqp_cstring_bytes(rkey), 1, 0, &p,
					    (amqp_bytes_t){ len, body });
		free(body);
		if (st != AMQP_STATUS_OK) {
			fprintf(stderr, "pbtest-pubflood: publishing: %s\n", amqp_error_string2(st));
			goto out;
		}
		f.published++;
		last_us = real_us();
		if (!first_us)
			first_us = last_us;
		/* take the acks that are already there, without waiting */
		while (o->confirm && read_frame(&f, 0) > 0)
			;
	}
	last_progress = mono_us();
	while (o->confirm && f.settled < f.published) {
		int r = read_frame(&f, 100000);
		if (r < 0)
			goto out;
		if (r > 0)
			last_progress = mono_us();
		else if (mono_us() - last_progress > o->timeout_ms * 1000) {
			fprintf(stderr, "pbtest-pubflood: %llu unconfirmed after %ld ms\n",
				(unsigned long long)(f.published - f.settled), o->timeout_ms);
			goto out;
		}
	}
	t1 = mono_us();
	printf("published %llu ms %.1f rate %.0f nacked %ld returned %ld first_us %lld last_us %lld\n",
	       (unsigned long long)f.published, (double)(t1 - t0) / 1000.0,
	       (double)f.published * 1e6 / (double)(t1 - t0 > 0 ? t1 - t0 : 1), f.nacked,
	       f.returned, (long long)first_us, (long long)last_us);
	rc = f.nacked || f.returned ? 1 : 0;
out:
	if (f.conn) {
		amqp_channel_close(f.conn, CH, AMQP_REPLY_SUCCESS);
		amqp_connection_close(f.conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(f.conn);
	}
	return rc;
}

/* ---- outbox-fill ---- */

static int cmd_outbox_fill(const char *path, const struct opts *o)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char exchange[PB_IDENT_MAX + 16], rkey[512];
	int rc = 1;
	int64_t now_ms = real_us() / 1000;

	snprintf(exchange, sizeof(exchange), "provbus.%s", o->federation);
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "pbtest-pubflood: %s: %s (let provbus-publish create it first)\n",
			path, strerror(errno));
		return EX_NOINPUT;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO outbox (id, exchange, routing_key, kind, service, seq,"
			       " ts_ms, body, spooled_at) VALUES (?1, ?2, ?3, 'provides', ?4, ?5,"
			       " ?6, ?7, ?8)", -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	for (long i = 0; i < o->count; i++) {
		struct pb_event ev;
		size_t len;
		char *body = make_event(o, i, &ev, rkey, sizeof(rkey), &len);

		if (!body)
			goto out;
		sqlite3_bind_text(st, 1, ev.id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, exchange, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rkey, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, o->service, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, ev.seq);
		sqlite3_bind_int64(st, 6, now_ms);
		sqlite3_bind_text(st, 7, body, (int)len, free);
		sqlite3_bind_int64(st, 8, now_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlerr;
		sqlite3_reset(st);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr;
	printf("spooled %ld\n", o->count);
	rc = 0;
	goto out;
sqlerr:
	fprintf(stderr, "pbtest-pubflood: %s: %s\n", path, db ? sqlite3_errmsg(db) : "cannot open");
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (argc < 3)
		usage();
	parse_opts(&o, argc - 3, argv + 3);
	if (!strcmp(argv[1], "publish"))
		return cmd_publish(argv[2], &o);
	if (!strcmp(argv[1], "outbox-fill"))
		return cmd_outbox_fill(argv[2], &o);
	usage();
	return EX_USAGE;
}
